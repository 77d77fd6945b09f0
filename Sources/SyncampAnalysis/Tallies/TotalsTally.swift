/// Sums the report's totals one finished op at a time, so that no op has to be kept.
struct TotalsTally {
    private(set) var totals = Analysis.Totals()
    /// Host syncs of the guest requests so far, while no guest flush has been seen.
    private var beforeFirstFlush = 0
    private var sawFlush = false
    private var afterSyncs = 0
    private var afterFlushes = 0

    /// Adds a finished op (ops come in index order: start order).
    mutating func add(_ op: GuestOp, _ summary: OpSummary) {
        if op.kind == .write { totals.guestWrites += 1 }
        if op.kind == .flush { totals.guestFlushes += 1 }
        add(summary)
        let syncs = summary.hostSyncs
        guard op.isGuestRequest else {
            totals.hostSyncsInGroups += syncs
            return
        }
        totals.hostSyncsUnderRequests += syncs
        // The first guest flush (and the writes before it) apart from the steady state after it.
        if !sawFlush {
            beforeFirstFlush += syncs
            if op.kind == .flush {
                sawFlush = true
                totals.firstFlushHostSyncs = beforeFirstFlush
            }
        } else {
            afterSyncs += syncs
            if op.kind == .flush { afterFlushes += 1 }
            totals.steadyStateAmplification = afterFlushes > 0 ? Double(afterSyncs) / Double(afterFlushes) : nil
        }
    }

    /// Adds the nodes no op took.
    mutating func addUnplaced(_ summary: OpSummary) {
        totals.unattributedHostSyncs += summary.hostSyncs
        add(summary)
    }

    private mutating func add(_ summary: OpSummary) {
        summary.causes.forEach { c, n in totals.causes[c, default: 0] += n }
        totals.journalCommits += summary.journalCommits
        totals.deviceFlushes += summary.deviceFlushes
        totals.deviceFUAWrites += summary.deviceFUAWrites
    }
}
