import Foundation
import Logging
import Testing
import YunzhenQueue
import YunzhenTesting

/// The queue on a filesystem that fills up: a 1 MiB tmpfs mounted for the test (needs root, as CI and the
/// development machines run; elsewhere the test is skipped and says why).
@Suite(.serialized) struct DiskFullTests {
    static let canMount = getuid() == 0

    @Test(.enabled(if: canMount, "mounting a small tmpfs needs root"))
    func publishingFailsClearlyWhenTheDiskIsFullAndRecoversWhenSpaceReturns() async throws {
        try await withTemporaryDirectory { directory in
            let mountPoint = directory.appendingPathComponent("small")
            try FileManager.default.createDirectory(at: mountPoint, withIntermediateDirectories: true)
            try Self.run("/bin/mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint.path)
            defer { try? Self.run("/bin/umount", mountPoint.path) }

            let topic = mountPoint.appendingPathComponent("queue/registration")
            let writer = try TopicWriter.open(
                directory: topic,
                topic: "registration",
                options: .init(segmentBytes: 256 * 1024)
            )
            defer { writer.close() }
            // Something else on the disk takes most of what is left.
            let filler = mountPoint.appendingPathComponent("filler")
            FileManager.default.createFile(atPath: filler.path, contents: Data(count: 600 * 1024))

            let payload = [UInt8](repeating: 0x7b, count: 256)
            var acknowledged: [UInt64] = []
            var failure: (any Error)?
            for sequence in 1...5_000 {
                do {
                    acknowledged += try await writer.append([
                        .init(producerSequence: UInt64(sequence), payload: payload)
                    ])
                } catch {
                    failure = error
                    break
                }
            }
            let error = try #require(failure as? QueueError)
            #expect(
                error
                    == .diskFull(
                        path: topic.appendingPathComponent(String(format: "%020llu.log", acknowledged.count)).path))
            #expect("\(error)".contains("no space left"))

            // Everything acknowledged is there, intact; nothing else is.
            let reader = try TopicReader(directory: topic)
            let records = try reader.next(limit: 10_000)
            #expect(records.records.map(\.offset) == acknowledged)
            #expect(records.quarantined.isEmpty)

            // Space returns: publishing carries on where it stopped.
            try FileManager.default.removeItem(at: filler)
            let next = try await writer.append([.init(producerSequence: 9_999, payload: payload)])
            #expect(next == [UInt64(acknowledged.count)])
        }
    }

    static func run(_ arguments: String...) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        try process.run()
        process.waitUntilExit()
        struct CommandFailed: Error { let command: [String] }
        guard process.terminationStatus == 0 else { throw CommandFailed(command: arguments) }
    }
}
