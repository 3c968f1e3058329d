import Foundation
import GRDB
import Hummingbird
import YunzhenContracts

/// Read-only FHIR R4 views of booking for integrators and other hospitals' systems: a session is a `Schedule`
/// (one doctor, one planning horizon), each of its places a `Slot`, a booking an `Appointment`. JSON as FHIR's JSON
/// format has it (`application/fhir+json`); codes from the value sets R4 binds.
enum FHIRViews {
    static let contentType = "application/fhir+json; charset=utf-8"

    /// A JSON object built from the database: FHIR resources are nested and sparse, so a dictionary of JSON values
    /// says them more plainly than a Codable tree per resource would.
    typealias Resource = [String: Any]

    static func schedule(_ session: Row) -> Resource {
        let visitType: String = session["visit_type"]
        return [
            "resourceType": "Schedule",
            "id": session["id"] as String,
            "active": (session["status"] as String) == "open",
            "serviceType": [serviceType(visitType)],
            "specialty": [
                [
                    "coding": [["system": "urn:yunzhen:department", "code": session["department_id"] as String]],
                    "text": session["department_name"] as String,
                ]
            ],
            "actor": [
                [
                    "reference": "Practitioner/\(session["doctor_id"] as String)",
                    "display": session["doctor_name"] as String,
                ]
            ],
            "planningHorizon": ["start": instant(session["starts_at"]), "end": instant(session["ends_at"])],
            "comment": (session["status"] as String) == "open"
                ? "\(session["date"] as String) \(session["period"] as String)"
                : "停诊 stopped: \(session["stop_reason"] as String? ?? "")",
        ]
    }

    static func slot(_ slot: Row) -> Resource {
        [
            "resourceType": "Slot",
            "id": slot["id"] as String,
            "schedule": ["reference": "Schedule/\(slot["session_id"] as String)"],
            "serviceType": [serviceType(slot["visit_type"])],
            // busy-unavailable: the session was stopped; busy: someone holds or has the place.
            "status": (slot["session_status"] as String) != "open"
                ? "busy-unavailable" : (slot["free"] as Bool) ? "free" : "busy",
            "start": instant(slot["starts_at"]),
            "end": instant(slot["ends_at"]),
            "comment": "就诊序号 visit number \(slot["visit_number"] as Int)",
        ]
    }

    static func appointment(_ row: Row) -> Resource {
        let status: String = row["status"]
        var resource: Resource = [
            "resourceType": "Appointment",
            "id": row["id"] as String,
            "status": appointmentStatus(status),
            "serviceType": [serviceType(row["visit_type"])],
            "appointmentType": [
                "coding": [
                    [
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0276", "code": "ROUTINE",
                        "display": "Routine appointment",
                    ]
                ]
            ],
            "start": instant(row["visit_start"]),
            "end": instant(row["visit_end"]),
            "created": instant(row["booked_at"]),
            "slot": [["reference": "Slot/\(row["slot_id"] as String)"]],
            "participant": [
                [
                    "actor": [
                        "reference": "Patient/\(row["patient_id"] as String)", "display": row["patient_name"] as String,
                    ],
                    "required": "required",
                    "status": "accepted",
                ],
                [
                    "actor": [
                        "reference": "Practitioner/\(row["doctor_id"] as String)",
                        "display": row["doctor_name"] as String,
                    ],
                    "required": "required",
                    "status": "accepted",
                ],
            ],
            "comment": "就诊序号 visit number \(row["visit_number"] as Int)",
        ]
        if status == "cancelled", let reason = row["cancel_reason"] as String? {
            // R4 spells it with one "l"; codes from the appointment-cancellation-reason code system.
            resource["cancelationReason"] = [
                "coding": [
                    [
                        "system": "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason",
                        "code": cancellationCode(reason),
                    ]
                ],
                "text": reason,
            ]
        }
        return resource
    }

    static func bundle(_ resources: [Resource], base: String) -> Resource {
        [
            "resourceType": "Bundle",
            "type": "searchset",
            "total": resources.count,
            "entry": resources.map { resource in
                [
                    "fullUrl": "\(base)/\(resource["resourceType"] as! String)/\(resource["id"] as! String)",
                    "resource": resource,
                    "search": ["mode": "match"],
                ] as Resource
            },
        ]
    }

    /// FHIR Appointment.status for our statuses.
    static func appointmentStatus(_ status: String) -> String {
        switch status {
        case "pending-payment": "pending"
        case "confirmed": "booked"
        case "checked-in": "checked-in"
        case "completed": "fulfilled"
        case "no-show": "noshow"
        default: "cancelled"
        }
    }

    static func cancellationCode(_ reason: String) -> String {
        switch reason {
        case "patient": "pat"
        case "session-stopped": "prov"
        // The hold ran out before the fee was paid.
        default: "oth-fin"
        }
    }

    static func serviceType(_ visitType: String) -> Resource {
        [
            "coding": [["system": "urn:yunzhen:visit-type", "code": visitType]],
            "text": visitType == "online" ? "在线问诊 online consultation" : "门诊 outpatient visit",
        ]
    }

    static func instant(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(secondsFromGMT: HospitalCalendar.utcOffset)
        return formatter.string(from: date)
    }

    static func response(_ resource: Resource) throws -> Response {
        let data = try JSONSerialization.data(
            withJSONObject: resource, options: [.sortedKeys, .withoutEscapingSlashes])
        return Response(
            status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(data: data)))
    }
}
