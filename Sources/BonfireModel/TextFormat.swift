// How text becomes a policy's token sequences: the tokenizer, the id every sequence starts with (BOS) and the id that
// ends a response (EOS). The built-in tasks use the character tokenizer with its BOS 1 / EOS 2 (`.character`); a
// Hugging Face directory brings its tokenizer.json and the bos_token_id / eos_token_id of its config.json
// (`HFCausalLM.textFormat`). Sequences are always [BOS] + prompt + response, the response ending with EOS when the
// policy produced it (PolicyGradient.swift, Sampler.swift).
import Foundation

package struct TextFormat: Sendable {
    package var tokenizer: any TextTokenizer
    /// First token of every sequence (prompt tokens on the wire never include it).
    package var bos: Int
    /// Token that ends a response (the sampler's stop token, appended to demonstrations).
    package var eos: Int

    package init(tokenizer: any TextTokenizer, bos: Int, eos: Int) {
        self.tokenizer = tokenizer; self.bos = bos; self.eos = eos
    }

    /// The character tokenizer of the built-in tasks (vocabulary version 1).
    package static let character = TextFormat(tokenizer: CharacterTokenizer(), bos: Tokenizer.bos, eos: Tokenizer.eos)

    /// The text of a sampled response: its tokens up to (not including) EOS.
    package func decodeResponse(_ ids: [Int]) -> String {
        tokenizer.decode(Array(ids.prefix { $0 != eos }))
    }
}

extension HFCausalLM {
    /// The text format of a loaded directory: `<dir>/tokenizer.json`, BOS = config.json `bos_token_id` (else
    /// `eos_token_id`, as GPT-2 uses <|endoftext|> for both), EOS = `eos_token_id` (the first one when it is a list).
    /// Every id the tokenizer can produce and both special ids must have an embedding row (< vocab_size).
    package func textFormat() throws -> TextFormat {
        guard let dir = sourceDirectory else {
            throw HFError("a fresh model has no tokenizer.json; load a Hugging Face directory that has one")
        }
        let tokURL = dir.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: tokURL.path) else {
            throw HFError("\(tokURL.path) is missing: Bonfire needs the model's tokenizer.json (the fast-tokenizer file "
                          + "save_pretrained writes) to turn prompts into tokens")
        }
        let tokenizer: BPETokenizer
        do { tokenizer = try BPETokenizer(contentsOf: tokURL) } catch {
            throw HFError("\(tokURL.path): \(error)")
        }
        let vocab = model.vocabSize
        let cfg = dir.appendingPathComponent("config.json").path
        guard tokenizer.vocabSize <= vocab else {
            throw HFError("\(tokURL.path) has \(tokenizer.vocabSize) token ids but \(cfg) says vocab_size = \(vocab): "
                          + "ids ≥ \(vocab) would have no embedding row. Use the tokenizer saved with this model")
        }
        let obj = (try? JSONSerialization.jsonObject(with: configJSON)) as? [String: Any] ?? [:]
        func id(_ key: String) throws -> Int? {
            guard let v = obj[key], !(v is NSNull) else { return nil }
            let first: Any? = (v as? [Any])?.first ?? ((v is [Any]) ? nil : v)
            guard let n = first as? NSNumber, let i = Int(exactly: n.doubleValue), i >= 0, i < vocab else {
                throw HFError("\(cfg): \(key) = \(v) must be a token id in 0..<\(vocab) (or a list of them)")
            }
            return i
        }
        let eos = try id("eos_token_id"), bos = try id("bos_token_id") ?? eos
        guard let bos, let eos else {
            throw HFError("\(cfg): bos_token_id and eos_token_id are missing; Bonfire starts every sequence with BOS and "
                          + "ends responses with EOS: add them to config.json (ids of the tokenizer's special tokens)")
        }
        return TextFormat(tokenizer: tokenizer, bos: bos, eos: eos)
    }
}
