// `bonfire-bench hf-run --model DIR`: what a run with `model.path = DIR` pays per role for a large model (not a timed
// test; docs/models.md "124 M parameters in a run"). Uses the runtime's own pieces:
//   load       HFCausalLM.load + tokenizer (every role at start, RunPolicy)
//   broadcast  the learner's parameter message (WireEnvelope(.parameters) encoded, ZeroMQ PUB over tcp loopback) →
//              a subscriber's WireDecoder → installed into a second model (the actor's `model.params = values`);
//              min / median of --repeats
//   checkpoint ModelCheckpoint.save with AdamW moments (what the learner writes every learner.checkpointEvery) and
//              ModelCheckpoint.load (resume); HFCausalLM.save (export-hf)
// Prints VmHWM (peak RSS) of this process after each phase.
import ArgumentParser
import BonfireCluster
import BonfireMath
import BonfireModel
import BonfireWire
import Foundation

struct HFRunBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hf-run",
        abstract: "Load, parameter broadcast and checkpoint cost of a Hugging Face model directory in a run.")

    @Option(help: "A Hugging Face model directory (e.g. from Scripts/make-run-fixture.py).") var model: String
    @Option(help: "Broadcast repetitions.") var repeats = 3
    @Option(help: "Scratch directory for checkpoints.") var dir = "/tmp/bonfire-hf-run-bench"

    func now() -> Double { monotonicSeconds() }

    func peakRSS() -> String {
        let s = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        return s.split(separator: "\n").first { $0.hasPrefix("VmHWM") }.map { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().joined(separator: " ") } ?? "?"
    }

    func run() throws {
        WireMemory.configureForLargeMessages()
        var t = now()
        let hf = try HFCausalLM.load(directory: URL(fileURLWithPath: model))
        let text = try hf.textFormat()
        let m = hf.model
        print(String(format: "load: %@ %d parameters (%.0f MB f32), tokenizer %d ids, bos %d eos %d: %.2f s; peak RSS %@",
                     hf.architecture.className, m.params.count, Double(m.params.count * 4) / 1e6, text.tokenizer.vocabSize,
                     text.bos, text.eos, now() - t, peakRSS()))

        // Broadcast.
        let hash = layoutHash(m.layout)
        let receiver = m.copy()
        t = now()
        let env = WireEnvelope(runID: "bench", senderRole: .learner, senderID: 0, sequence: 1,
                               payload: .parameters(WireParameters(version: 1, layoutHash: hash, values: m.params)))
        let bytes = env.encoded()
        let encodeS = now() - t
        t = now()
        let limits = WireLimits(parameterCount: m.params.count, minimumBytes: WireLimits().maxMessageBytes)   // as ActorLink
        guard case .parameters(let p) = try WireDecoder(runID: "bench", limits: limits).decode(bytes).payload else { throw ValidationError("decode") }
        let decodeS = now() - t
        precondition(p.values.count == m.params.count)
        let ctx = try ZMQContext()
        let pub = try ZMQSocket(ctx, .pub)
        try pub.set(.sendHighWaterMark(2))
        try pub.bind("tcp://127.0.0.1:*")
        let endpoint = try pub.lastEndpoint()
        let st = BroadcastState(receiver: receiver)
        let lock = st.lock
        let done = DispatchSemaphore(value: 0)
        let count = repeats
        let sub = Thread {
            defer { done.signal() }
            let receiver = st.receiver
            do {
                let s = try ZMQSocket(ctx, .sub)
                try s.set(.subscribe([]))
                try s.set(.receiveHighWaterMark(2))
                try s.connect(endpoint)
                var decoder = WireDecoder(runID: "bench", limits: limits)
                var got = 0
                while got < count {
                    guard let r = try s.receiveEnvelope(&decoder, timeout: .seconds(60)) else { throw ValidationError("subscriber timed out") }
                    guard case .parameters(let q) = try r.envelope.get().payload else {
                        lock.lock(); st.joined = true; lock.unlock(); continue
                    }
                    guard q.layoutHash == hash else { throw ValidationError("layout hash") }
                    receiver.params = q.values   // what the actor's install does
                    let d = monotonicSeconds()
                    lock.lock(); st.latencies.append(d - st.sentAt); lock.unlock()
                    got += 1
                }
            } catch { lock.lock(); st.failure = "\(error)"; lock.unlock() }
        }
        sub.start()
        let probe = WireEnvelope(runID: "bench", senderRole: .learner, senderID: 0, sequence: 0,
                                 payload: .heartbeat(WireHeartbeat(policyVersion: 0, unixTimeMs: 0)))
        while true {
            lock.lock(); let j = st.joined || st.failure != nil; lock.unlock()
            if j { break }
            _ = try pub.send(probe, timeout: .zero)
            Thread.sleep(forTimeInterval: 0.01)
        }
        for i in 0..<count {
            lock.lock(); st.sentAt = now(); lock.unlock()
            // The learner encodes a new envelope per version (LearnerLink.publish); so does this loop.
            let e = WireEnvelope(runID: "bench", senderRole: .learner, senderID: 0, sequence: UInt64(i + 2),
                                 payload: .parameters(WireParameters(version: UInt64(i + 2), layoutHash: hash, values: m.params)))
            guard try pub.send(e, timeout: .seconds(60)) else { throw ValidationError("publish timed out") }
            while true {
                lock.lock(); let n = st.latencies.count, f = st.failure; lock.unlock()
                if n > i || f != nil { break }
                Thread.sleep(forTimeInterval: 0.001)
            }
        }
        done.wait()
        if let failure = st.failure { throw ValidationError(failure) }
        precondition(receiver.params == m.params)
        let l = st.latencies.sorted()
        print(String(format: "broadcast: %.0f MB message; encode %.2f s, decode %.2f s; publish → installed on the subscriber %.2f / %.2f s (min / median of %d); peak RSS %@",
                     Double(bytes.count) / 1e6, encodeS, decodeS, l[0], l[l.count / 2], count, peakRSS()))

        // Checkpoints.
        var opt = AdamW(learningRate: 1e-5, layout: m.layout)
        m.zeroGrad()
        opt.update(params: &m.params, grads: m.grads)   // allocates the moments, as after the first learner update
        let ckpt = URL(fileURLWithPath: dir).appendingPathComponent("v000001.safetensors")
        try? FileManager.default.removeItem(at: URL(fileURLWithPath: dir))
        t = now()
        try ModelCheckpoint.save(m, optimizer: opt, step: 1, metadata: ["policy_version": "1"], to: ckpt)
        let saveS = now() - t
        let size = (try? FileManager.default.attributesOfItem(atPath: ckpt.path)[.size] as? Int) ?? 0
        print(String(format: "checkpoint write (params + AdamW m, v, fsync): %.2f s, %.0f MB; peak RSS %@", saveS,
                     Double(size) / 1e6, peakRSS()))
        t = now()
        try ModelCheckpoint.load(from: ckpt, into: receiver)
        print(String(format: "checkpoint read (CRC-checked, into the model): %.2f s; peak RSS %@", now() - t, peakRSS()))
        t = now()
        try hf.save(to: URL(fileURLWithPath: dir).appendingPathComponent("hf"))
        print(String(format: "export-hf (config.json + model.safetensors): %.2f s; peak RSS %@", now() - t, peakRSS()))
        try? FileManager.default.removeItem(at: URL(fileURLWithPath: dir))
    }
}

private func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

/// Shared between the publishing loop and the subscriber thread (guarded by `lock`).
private final class BroadcastState: @unchecked Sendable {
    let lock = NSLock()
    let receiver: any LanguageModel
    var sentAt = 0.0, latencies: [Double] = [], joined = false, failure: String? = nil
    init(receiver: any LanguageModel) { self.receiver = receiver }
}
