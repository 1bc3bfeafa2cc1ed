// `bonfire keys --dir D`: ZeroMQ CURVE keys for one deployment — a server key pair (coordinator and learner bind with
// it), one client key pair per role (coordinator, learner, actor) and the allow list binding each client key to its
// role. Files are mode 0600 in a 0700 directory, written atomically; no secret key is ever printed.
// Then run every role with `--set security.mode=curve --set security.keysDir=D` (docs/cluster.md).
import ArgumentParser
import BonfireWire
import Foundation

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create ZeroMQ CURVE keys for a run: server key pair, per-role client keys, allow list.",
        discussion: """
        Writes D/server.key, D/server.pub, D/coordinator.key, D/learner.key, D/actor.key and D/allowed-clients.
        The coordinator/learner host needs all of them; an actor host only server.pub and actor.key.
        Use them with: --set security.mode=curve --set security.keysDir=D
        """)

    @Option(help: ArgumentHelp("Key directory to create (mode 0700).", valueName: "dir"))
    var dir: String

    @Flag(help: "Replace existing keys (every running role of that deployment must restart with the new ones).")
    var force = false

    func run() throws {
        let url = URL(fileURLWithPath: dir)
        let names: [String]
        do { names = try CurveKeyDirectory.generate(at: url, overwrite: force) } catch let e {
            throw ValidationError("keys: \(e.message)")
        }
        let server = try CurveKeyDirectory(url).serverPublicKey()
        print("bonfire keys: wrote \(names.sorted().joined(separator: ", ")) in \(url.path) (mode 0600)")
        print("server public key: \(server)")
        print("use: --set security.mode=curve --set security.keysDir=\(url.path)")
        print("actor hosts need only \(url.path)/server.pub and \(url.path)/actor.key")
    }
}
