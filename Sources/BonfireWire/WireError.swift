// Decode failures of the wire layer. Every frame a peer sends is untrusted: anything that is not a well-formed,
// consistent envelope of our protocol version and run becomes a `WireError` (never a crash), and receivers count
// the drops by `WireDropReason` (see WireDecoder).

/// Why an incoming frame was dropped. `rawValue` is the metric-key suffix (`wire/dropped/<reason>`).
package enum WireDropReason: String, CaseIterable, Sendable, Hashable {
    /// Larger than the receiver's `maxMessageBytes`; not parsed at all.
    case oversized
    /// Not a protobuf `Envelope` (truncated, bad varint, wrong wire type, …).
    case malformed
    /// `protocol_version` differs from `WireEnvelope.protocolVersion`.
    case wrongProtocolVersion = "wrong_protocol_version"
    /// `run_id` is not the run this receiver belongs to.
    case unknownRunID = "unknown_run_id"
    /// The envelope carries no payload (or one this build does not know).
    case missingPayload = "missing_payload"
    /// Parsed, but a field is inconsistent (float bytes not a multiple of 4, lengths that disagree, unknown enum).
    case invalidField = "invalid_field"
}

/// A frame that could not be accepted, with a human-readable detail for the log line (which names the peer).
package struct WireError: Error, CustomStringConvertible, Sendable, Equatable {
    package var reason: WireDropReason
    package var detail: String

    package init(_ reason: WireDropReason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }

    package var description: String { "wire frame dropped (\(reason.rawValue)): \(detail)" }
}
