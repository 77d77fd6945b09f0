@testable import SyncampAnalysis

/// Tests read node details as reports show them (`NodeDetails.strings`).
extension NodeDetails {
    subscript(key: String) -> String? { strings.first { $0.key == key }?.value }
    var dictionary: [String: String] { Dictionary(strings, uniquingKeysWith: { a, _ in a }) }
}

extension CausalNode {
    static let hostSyncKind = NodeKind.hostSync
}
