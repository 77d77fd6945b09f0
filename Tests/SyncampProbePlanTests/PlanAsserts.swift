import SyncampCapture
import SyncampProbePlan
import SyncampProbes
import XCTest

/// What tests compare of a plan: the roles in probe-id order, each role's symbol, the roles left out.
extension ProbePlan {
    var roles: [ProbeRole] { planned.map(\.entry.role) }
    var missingRoles: [ProbeRole] { missing.compactMap { ProbeRole(rawValue: $0.role) } }
    var skippedRoles: [ProbeRole] { skipped.compactMap { ProbeRole(rawValue: $0.role) } }

    func probe(_ role: ProbeRole, file: StaticString = #filePath, line: UInt = #line) throws -> PlannedProbe {
        try XCTUnwrap(planned.first { $0.entry.role == role }, "\(role) is not planned", file: file, line: line)
    }

    func symbol(_ role: ProbeRole) -> String? { planned.first { $0.entry.role == role }?.symbol.name }

    func reason(_ role: ProbeRole) -> String? {
        (missing + skipped).first { $0.role == role.rawValue }?.reason
    }
}

/// Every catalog role appears once in a plan: planned, missing or skipped.
func XCTAssertAccountsForEveryEntry(_ plan: ProbePlan, _ catalog: [ProbeRole], file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual((plan.roles + plan.missingRoles + plan.skippedRoles).map(\.rawValue).sorted(),
                   catalog.map(\.rawValue).sorted(), "a catalog entry is neither planned, missing nor skipped", file: file, line: line)
}
