/// What a full read of one segment's bytes found.
struct SegmentScan {
    /// Intact records in order, with the position each starts at.
    var records: [(record: RecordFormat.Record, position: Int)] = []
    /// Damaged stretches followed by intact records: quarantined, reported, skipped.
    var quarantined: [(position: Int, resumedAt: Int)] = []
    /// Where the written part ends: after the last intact record, before a torn tail or the zeros.
    var end = 0
    /// True when bytes after `end` are not zeros (a torn tail, cut on recovery).
    var tornTail = false

    init(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { bytes in
            var position = 0
            while position < bytes.count {
                switch RecordFormat.parse(bytes, at: position) {
                case .record(let record, let next):
                    records.append((record, position))
                    position = next
                    end = next
                case .end:
                    return
                case .damaged:
                    guard let resumed = RecordFormat.resynchronize(bytes, after: position) else {
                        tornTail = true
                        return
                    }
                    quarantined.append((position, resumed))
                    position = resumed
                }
            }
        }
    }
}
