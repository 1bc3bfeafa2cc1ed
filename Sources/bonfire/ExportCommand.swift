// `bonfire export-hf`: a learner checkpoint of a run started from a Hugging Face directory (model.path) written back in
// that layout — config.json + model.safetensors + the tokenizer files — which transformers' from_pretrained loads.
//   bonfire export-hf --checkpoint runs/smol/checkpoints/v000200.safetensors --out runs/smol/hf-v200
import ArgumentParser
import BonfireCluster
import BonfireModel
import Foundation

struct ExportHFCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-hf",
        abstract: "Write a checkpoint of a Hugging Face policy (model.path) back as a Hugging Face model directory.",
        discussion: "The architecture and tokenizer come from the run's model.path (recorded in the checkpoint) or --model. "
            + "`bonfire train --init DIR` does this for its last checkpoint (<out>/hf). See docs/models.md.")

    @Option(help: ArgumentHelp("A learner checkpoint (<run.dir>/checkpoints/v*.safetensors).", valueName: "file"))
    var checkpoint: String
    @Option(help: ArgumentHelp("Output directory (created).", valueName: "dir")) var out: String
    @Option(help: ArgumentHelp("The Hugging Face directory the run started from (default: the checkpoint's model.path).",
                               valueName: "dir"))
    var model: String?
    @Option(help: "Stored dtype: f32, f16 or bf16 (default: each tensor as the source stored it).") var dtype: String?

    func run() throws {
        var dt: HFDType? = nil
        if let dtype {
            guard let d = [HFDType.f32, .f16, .bf16].first(where: { $0.rawValue == dtype.uppercased() || $0.torchName == dtype }) else {
                throw ValidationError("--dtype \(dtype): use f32, f16 or bf16")
            }
            dt = d
        }
        do {
            let hf = try HFExport.write(checkpoint: URL(fileURLWithPath: checkpoint), modelPath: model,
                                        to: URL(fileURLWithPath: out), dtype: dt)
            print("bonfire export-hf: \(hf.architecture.className), \(hf.parameterCount) parameters → \(out)")
        } catch let e as ClusterError {
            throw ValidationError(e.message)
        }
    }
}
