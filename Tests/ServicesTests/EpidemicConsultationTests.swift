import Foundation
import GRDB
import HTTPTypes
import Testing
import YunzhenContracts
import YunzhenMessaging

@testable import ScreeningService

/// Free epidemic questions: a patient asks for someone their account manages; it is announced; a doctor on duty
/// takes it and from then may read it.
@Suite struct EpidemicConsultationTests {
    @Test func aPatientAsksADoctorTakesIt() async throws {
        try await ScreeningFixture.run { fixture in
            try await fixture.register("pat_1", account: "acct_a", birthYear: 2015, sex: "male")
            let patient = try await fixture.headers("acct_a", .patient)
            let question: [String: Any] = [
                "patientId": "pat_1", "topic": "symptoms", "question": "孩子移植后三个月，今天低热 37.6 ℃，需要去发热门诊吗？",
            ]
            #expect(
                try await fixture.send(
                    .post, "/epidemic-consultations", patient,
                    ["patientId": "pat_1", "topic": "symptoms", "question": "?"]
                ).1["code"] as? String == "invalid-question")
            #expect(
                try await fixture.send(
                    .post, "/epidemic-consultations", patient,
                    ["patientId": "pat_1", "topic": "gossip", "question": "一个问题呢"]
                ).0 == .badRequest)
            let opened = try await fixture.send(.post, "/epidemic-consultations", patient, question)
            #expect(opened.0 == .created && opened.1["status"] as? String == "open")
            #expect(opened.1["birthYear"] as? Int == 2015 && opened.1["sex"] as? String == "male")
            let id = try #require(opened.1["id"] as? String)
            let mine = try await fixture.send(.get, "/me/epidemic-consultations", patient)
            #expect((mine.1["consultations"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])

            // Announced for the doctors on duty, question and all.
            let announced = try await fixture.database.writer.read { db in
                try Data.fetchAll(db, sql: "SELECT event FROM queue_outbox ORDER BY id").compactMap {
                    try? EventCoding.decoder.decode(CloudEvent<EpidemicConsultRequested>.self, from: $0).data
                }
            }
            #expect(announced.map(\.consultationID) == [id] && announced.first?.question.contains("37.6") == true)

            // A doctor sees what waits, but reads one only after taking it.
            let doctor = try await fixture.headers("staff_doc", .doctor)
            let waiting = try await fixture.send(.get, "/epidemic-consultations", doctor)
            #expect((waiting.1["consultations"] as? [[String: Any]])?.count == 1)
            #expect(try await fixture.send(.get, "/epidemic-consultations", patient).0 == .forbidden)
            #expect(try await fixture.send(.get, "/epidemic-consultations/\(id)", doctor).0 == .notFound)
            let taken = try await fixture.send(.post, "/epidemic-consultations/\(id)/take", doctor)
            #expect(taken.0 == .ok && taken.1["takenBy"] as? String == "staff_doc")
            let late = try await fixture.send(
                .post, "/epidemic-consultations/\(id)/take", try await fixture.headers("staff_doc2", .doctor))
            #expect(late.0 == .conflict && late.1["code"] as? String == "already-taken")
            #expect(
                try await fixture.send(.get, "/epidemic-consultations/\(id)", doctor).1["status"] as? String == "taken")
            #expect(
                (try await fixture.send(.get, "/epidemic-consultations", doctor).1["consultations"] as? [Any])?.isEmpty
                    == true)
        }
    }

    @Test func anAccountHasAtMostThreeQuestionsWaiting() async throws {
        try await ScreeningFixture.run { fixture in
            try await fixture.register("pat_1", account: "acct_a")
            let patient = try await fixture.headers("acct_a", .patient)
            var statuses: [HTTPResponse.Status] = []
            var last: [String: Any] = [:]
            for number in 1...4 {
                let response = try await fixture.send(
                    .post, "/epidemic-consultations", patient,
                    ["patientId": "pat_1", "topic": "vaccination", "question": "第\(number)个问题：疫苗能打吗？"])
                statuses.append(response.0)
                last = response.1
            }
            #expect(statuses == [.created, .created, .created, .conflict])
            let today = HospitalCalendar.shared.date(of: fixture.clock.now)
            let day =
                try await fixture.send(
                    .get, "/admin/statistics/screenings?from=\(today)&to=\(today)",
                    try await fixture.headers("staff_admin", .admin)
                ).1["totals"] as? [String: Any]
            #expect(day?["epidemicQuestions"] as? Int == 3)
            #expect(last["code"] as? String == "too-many-open-questions")
        }
    }
}
