/// Sums the report's totals one finished op at a time, so that no op has to be kept.
struct TotalsTally {
    /// The totals so far, with their causes.
    var totals: Analysis.Totals {
        var t = counted
        t.causes = causes.dictionary
        // Made when read, not per op: a division per guest request.
        if sawFlush, afterFlushes > 0 { t.steadyStateAmplification = Double(afterSyncs) / Double(afterFlushes) }
        return t
    }
    private var counted = Analysis.Totals()
    /// Host syncs per cause, by `Cause.slot` (a dictionary hashed the cause per op with syncs).
    private var causes = CauseTotals()
    /// Host syncs of the guest requests so far, while no guest flush has been seen.
    private var beforeFirstFlush = 0
    private var sawFlush = false
    private var afterSyncs = 0
    private var afterFlushes = 0

    /// Adds a finished op (ops come in index order: start order).
    mutating func add(_ op: GuestOp, _ summary: OpSummary) {
        if op.kind == .write { counted.guestWrites += 1 }
        if op.kind == .flush { counted.guestFlushes += 1 }
        add(summary)
        let syncs = summary.hostSyncs
        guard op.isGuestRequest else {
            counted.hostSyncsInGroups += syncs
            return
        }
        counted.hostSyncsUnderRequests += syncs
        // The first guest flush (and the writes before it) apart from the steady state after it.
        if !sawFlush {
            beforeFirstFlush += syncs
            if op.kind == .flush {
                sawFlush = true
                counted.firstFlushHostSyncs = beforeFirstFlush
            }
        } else {
            afterSyncs += syncs
            if op.kind == .flush { afterFlushes += 1 }
        }
    }

    /// Adds the nodes no op took.
    mutating func addUnplaced(_ summary: OpSummary) {
        counted.unattributedHostSyncs += summary.hostSyncs
        add(summary)
    }

    private mutating func add(_ summary: OpSummary) {
        causes.add(summary.causes)
        counted.journalCommits += summary.journalCommits
        counted.deviceFlushes += summary.deviceFlushes
        counted.deviceFUAWrites += summary.deviceFUAWrites
    }
}
