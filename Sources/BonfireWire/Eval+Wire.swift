// Evaluation: the coordinator's request (policy version, task, split, N list, temperatures) and an actor's report
// (one row per (N, temperature): pass@N, Bo-N accuracy, mean reward).
import CBonfireProto

package struct WireEvalRequest: Equatable, Sendable {
    package var requestID: UInt64
    package var version: UInt64
    package var task: String
    package var split: String
    /// N values for pass@N / Bo-N.
    package var nList: [Int]
    package var temperatures: [Double]
    /// 0 = the whole split.
    package var numPrompts: Int

    package init(requestID: UInt64, version: UInt64, task: String, split: String = "test", nList: [Int],
                 temperatures: [Double], numPrompts: Int = 0) {
        self.requestID = requestID; self.version = version; self.task = task; self.split = split
        self.nList = nList; self.temperatures = temperatures; self.numPrompts = numPrompts
    }

    package init(wire: [UInt8]) throws(WireError) {
        self = try unpackMessage(wire, what: "EvalRequest", unpack: bonfire__v1__eval_request__unpack,
                                 convert: Self.init(c:))
    }

    package func encoded() -> [UInt8] {
        let arena = PackArena()
        return withExtendedLifetime(arena) { packMessage(build(in: arena)) }
    }

    init(c: UnsafePointer<Bonfire__V1__EvalRequest>) throws(WireError) {
        let m = c.pointee
        self.init(requestID: m.request_id, version: m.version, task: swiftString(m.task), split: swiftString(m.split),
                  nList: swiftInts(m.n_n_list, m.n_list), temperatures: swiftArray(m.n_temperatures, m.temperatures),
                  numPrompts: Int(m.num_prompts))
    }

    func build(in a: PackArena) -> UnsafeMutablePointer<Bonfire__V1__EvalRequest> {
        precondition(numPrompts >= 0 && numPrompts <= Int(UInt32.max), "EvalRequest.numPrompts \(numPrompts) out of range")
        let p = a.make(Bonfire__V1__EvalRequest.self, bonfire__v1__eval_request__init)
        p.pointee.request_id = requestID
        p.pointee.version = version
        p.pointee.task = a.string(task)
        p.pointee.split = a.string(split)
        (p.pointee.n_n_list, p.pointee.n_list) = a.uint32s(nList)
        (p.pointee.n_temperatures, p.pointee.temperatures) = a.copy(temperatures)
        p.pointee.num_prompts = UInt32(numPrompts)
        return p
    }
}

/// One row of an evaluation table.
package struct WireEvalRow: Equatable, Sendable {
    package var n: Int
    package var temperature: Double
    package var passAtN: Double
    /// Bo-N accuracy: expected R of the response the verifier picks among N.
    package var boN: Double
    package var meanReward: Double
    /// Prompts (BoN jobs) or episodes (environment jobs).
    package var numPrompts: Int
    /// Environment jobs: mean undiscounted return over the evaluation episodes (0 for BoN jobs).
    package var meanReturn: Double
    /// Environment jobs: meanReturn / the environment's optimal return (0 for BoN jobs).
    package var fractionOfOptimal: Double

    package init(n: Int, temperature: Double, passAtN: Double, boN: Double, meanReward: Double, numPrompts: Int,
                 meanReturn: Double = 0, fractionOfOptimal: Double = 0) {
        self.n = n; self.temperature = temperature; self.passAtN = passAtN; self.boN = boN
        self.meanReward = meanReward; self.numPrompts = numPrompts
        self.meanReturn = meanReturn; self.fractionOfOptimal = fractionOfOptimal
    }
}

package struct WireEvalReport: Equatable, Sendable {
    package var requestID: UInt64
    package var version: UInt64
    package var task: String
    package var split: String
    package var rows: [WireEvalRow]

    package init(requestID: UInt64, version: UInt64, task: String, split: String = "test", rows: [WireEvalRow]) {
        self.requestID = requestID; self.version = version; self.task = task; self.split = split; self.rows = rows
    }

    package init(wire: [UInt8]) throws(WireError) {
        self = try unpackMessage(wire, what: "EvalReport", unpack: bonfire__v1__eval_report__unpack,
                                 convert: Self.init(c:))
    }

    package func encoded() -> [UInt8] {
        let arena = PackArena()
        return withExtendedLifetime(arena) { packMessage(build(in: arena)) }
    }

    init(c: UnsafePointer<Bonfire__V1__EvalReport>) throws(WireError) {
        let m = c.pointee
        var rows: [WireEvalRow] = []
        for i in 0..<m.n_rows {
            guard let r = m.rows[i]?.pointee else { throw WireError(.malformed, "EvalReport.rows[\(i)] is null") }
            rows.append(WireEvalRow(n: Int(r.n), temperature: r.temperature, passAtN: r.pass_at_n, boN: r.bo_n,
                                    meanReward: r.mean_reward, numPrompts: Int(r.num_prompts),
                                    meanReturn: r.mean_return, fractionOfOptimal: r.fraction_of_optimal))
        }
        self.init(requestID: m.request_id, version: m.version, task: swiftString(m.task), split: swiftString(m.split),
                  rows: rows)
    }

    func build(in a: PackArena) -> UnsafeMutablePointer<Bonfire__V1__EvalReport> {
        let p = a.make(Bonfire__V1__EvalReport.self, bonfire__v1__eval_report__init)
        p.pointee.request_id = requestID
        p.pointee.version = version
        p.pointee.task = a.string(task)
        p.pointee.split = a.string(split)
        p.pointee.n_rows = rows.count
        if !rows.isEmpty {
            let arr = a.array(UnsafeMutablePointer<Bonfire__V1__EvalRow>?.self, count: rows.count)
            for (i, r) in rows.enumerated() {
                precondition(r.n >= 0 && r.n <= Int(UInt32.max) && r.numPrompts >= 0 && r.numPrompts <= Int(UInt32.max),
                             "EvalRow \(i): n \(r.n) / numPrompts \(r.numPrompts) out of uint32 range")
                let e = a.make(Bonfire__V1__EvalRow.self, bonfire__v1__eval_row__init)
                e.pointee.n = UInt32(r.n)
                e.pointee.temperature = r.temperature
                e.pointee.pass_at_n = r.passAtN
                e.pointee.bo_n = r.boN
                e.pointee.mean_reward = r.meanReward
                e.pointee.num_prompts = UInt32(r.numPrompts)
                e.pointee.mean_return = r.meanReturn
                e.pointee.fraction_of_optimal = r.fractionOfOptimal
                arr[i] = e
            }
            p.pointee.rows = arr
        }
        return p
    }
}
