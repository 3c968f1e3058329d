import Foundation

/// An epidemic screening questionnaire (疫情筛查表) and its decision rules, as data: rules changed often and
/// differed by city (CLINICAL.md §5, O8), so a new version is published, never code changed. Every answer records
/// the version it was given and the rule that fired.
struct Questionnaire: Codable, Sendable, Equatable {
    var title: String
    var titleEn: String
    var items: [Item]
    /// Evaluated in order; the first whose condition holds decides. The last should hold always.
    var rules: [Rule]

    struct Option: Codable, Sendable, Equatable {
        var value: String
        var text: String
        var label: String
    }

    /// A text asked for when a yes/no item is answered yes (where, which country, which cities).
    struct FollowUp: Codable, Sendable, Equatable {
        var text: String
        var label: String
    }

    enum ItemType: String, Codable, Sendable {
        /// A number with a unit, a range and a number of decimals (the temperature).
        case number
        /// One of the options.
        case single
        /// Several of the options; `exclusive` (e.g. `none`) may not be combined with others.
        case multiple
        /// Yes or no, with an optional follow-up text on yes.
        case yesNo = "yes-no"
        /// A declaration that must be accepted (true).
        case declaration
    }

    struct Item: Codable, Sendable, Equatable {
        var id: String
        var type: ItemType
        /// The question in Chinese, as the patient reads it, and its English label.
        var text: String
        var label: String
        var unit: String?
        var minimum: Double?
        var maximum: Double?
        var decimals: Int?
        var options: [Option]?
        var exclusive: String?
        var followUp: FollowUp?
    }

    /// Where the patient is sent.
    enum Outcome: String, Codable, Sendable, CaseIterable {
        /// 正常就诊: may enter for the visit.
        case normalVisit = "normal-visit"
        /// 发热门诊: go to the fever clinic, not the general clinics.
        case feverClinic = "fever-clinic"
        /// 核酸检测: nucleic-acid sampling first, entry after a negative result.
        case nucleicAcidTest = "nucleic-acid-test"
        /// 不得进入: do not enter; staff will guide (escort to the fever clinic, report per local CDC rules).
        case doNotEnter = "do-not-enter"

        /// Whether the patient may enter the general clinics for the visit.
        var passes: Bool { self == .normalVisit }

        /// Where the patient goes, shown with the rule's advice.
        var destination: (chinese: String, english: String) {
            switch self {
            case .normalVisit: ("普通门诊", "General outpatient clinic")
            case .feverClinic: ("发热门诊", "Fever clinic")
            case .nucleicAcidTest: ("核酸采样点", "Nucleic-acid sampling point")
            case .doNotEnter: ("请勿入院，原地等候工作人员", "Do not enter; wait where you are for the staff")
            }
        }
    }

    struct Rule: Codable, Sendable, Equatable {
        var id: String
        var when: Condition
        var outcome: Outcome
        /// What the patient is told to do, in Chinese and English.
        var advice: String
        var adviceEn: String
    }

    /// A condition over the answers. JSON: `{"item": "Q1", "op": "ge", "value": 37.3}`, `{"anyOf": [...]}`,
    /// `{"allOf": [...]}`, `{"not": {...}}`, `{"always": true}`.
    indirect enum Condition: Codable, Sendable, Equatable {
        case compare(item: String, op: Comparison, value: AnswerValue)
        case anyOf([Condition])
        case allOf([Condition])
        case not(Condition)
        case always

        enum Comparison: String, Codable, Sendable {
            case eq, ne, lt, le, gt, ge
            /// A multiple-choice answer includes any of the listed values.
            case includesAny = "includes-any"
        }

        private enum Keys: String, CodingKey { case item, op, value, anyOf, allOf, not, always }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Keys.self)
            if let conditions = try container.decodeIfPresent([Condition].self, forKey: .anyOf) {
                self = .anyOf(conditions)
            } else if let conditions = try container.decodeIfPresent([Condition].self, forKey: .allOf) {
                self = .allOf(conditions)
            } else if let condition = try container.decodeIfPresent(Condition.self, forKey: .not) {
                self = .not(condition)
            } else if try container.decodeIfPresent(Bool.self, forKey: .always) == true {
                self = .always
            } else {
                self = .compare(
                    item: try container.decode(String.self, forKey: .item),
                    op: try container.decode(Comparison.self, forKey: .op),
                    value: try container.decode(AnswerValue.self, forKey: .value))
            }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            switch self {
            case .compare(let item, let op, let value):
                try container.encode(item, forKey: .item)
                try container.encode(op, forKey: .op)
                try container.encode(value, forKey: .value)
            case .anyOf(let conditions): try container.encode(conditions, forKey: .anyOf)
            case .allOf(let conditions): try container.encode(conditions, forKey: .allOf)
            case .not(let condition): try container.encode(condition, forKey: .not)
            case .always: try container.encode(true, forKey: .always)
            }
        }

        /// Items the condition reads.
        var items: [String] {
            switch self {
            case .compare(let item, _, _): [item]
            case .anyOf(let conditions), .allOf(let conditions): conditions.flatMap(\.items)
            case .not(let condition): condition.items
            case .always: []
            }
        }

        func holds(for answers: [String: AnswerValue]) -> Bool {
            switch self {
            case .always: return true
            case .not(let condition): return !condition.holds(for: answers)
            case .anyOf(let conditions): return conditions.contains { $0.holds(for: answers) }
            case .allOf(let conditions): return conditions.allSatisfy { $0.holds(for: answers) }
            case .compare(let item, let op, let expected):
                guard let answer = answers[item] else { return false }
                return Self.compare(answer, op, expected)
            }
        }

        private static func compare(_ answer: AnswerValue, _ op: Comparison, _ expected: AnswerValue) -> Bool {
            switch (answer, op, expected) {
            case (.number(let a), _, .number(let b)):
                switch op {
                case .eq: return a == b
                case .ne: return a != b
                case .lt: return a < b
                case .le: return a <= b
                case .gt: return a > b
                case .ge: return a >= b
                case .includesAny: return false
                }
            case (.choices(let chosen), .includesAny, .choices(let listed)):
                return !Set(chosen).isDisjoint(with: listed)
            case (_, .eq, _): return answer == expected
            case (_, .ne, _): return answer != expected
            default: return false
            }
        }
    }

    /// One answer: a number, a choice, several choices, yes/no.
    enum AnswerValue: Codable, Sendable, Equatable {
        case number(Double)
        case choice(String)
        case choices([String])
        case bool(Bool)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let bool = try? container.decode(Bool.self) {
                self = .bool(bool)
            } else if let number = try? container.decode(Double.self) {
                self = .number(number)
            } else if let text = try? container.decode(String.self) {
                self = .choice(text)
            } else {
                self = .choices(try container.decode([String].self))
            }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .number(let number): try container.encode(number)
            case .choice(let text): try container.encode(text)
            case .choices(let texts): try container.encode(texts)
            case .bool(let bool): try container.encode(bool)
            }
        }
    }

    // MARK: Checking a questionnaire before it is published

    /// What is wrong with the questionnaire as data, each with where; empty when it can be published.
    func problems() -> [String] {
        var problems: [String] = []
        var seen = Set<String>()
        if items.isEmpty { problems.append("`items` is empty") }
        for item in items {
            if !seen.insert(item.id).inserted { problems.append("item `\(item.id)` appears twice") }
            switch item.type {
            case .number:
                guard let minimum = item.minimum, let maximum = item.maximum, minimum < maximum,
                    (0...3).contains(item.decimals ?? 0)
                else {
                    problems.append("number item `\(item.id)` needs `minimum` < `maximum` and `decimals` 0–3")
                    continue
                }
            case .single, .multiple:
                let values = (item.options ?? []).map(\.value)
                if values.count < 2 || Set(values).count != values.count {
                    problems.append("choice item `\(item.id)` needs two or more options with distinct values")
                }
                if let exclusive = item.exclusive, !values.contains(exclusive) {
                    problems.append("item `\(item.id)`: `exclusive` `\(exclusive)` is not one of its options")
                }
            case .yesNo, .declaration: break
            }
        }
        if rules.isEmpty { problems.append("`rules` is empty") }
        for rule in rules {
            for item in rule.when.items where !seen.contains(item) {
                problems.append("rule `\(rule.id)` reads item `\(item)`, which the questionnaire does not ask")
            }
        }
        if rules.last?.when != .always {
            problems.append("the last rule must hold always (`{\"always\": true}`), so every answer has an outcome")
        }
        return problems
    }

    // MARK: Answers

    /// One wrong answer: which item and what to fix.
    struct AnswerProblem: Error, Equatable, Sendable {
        var item: String
        var message: String
    }

    /// Checks the answers against the items: every item answered, each in its type and range; a follow-up
    /// text where a yes asks for one. Returns every problem, not only the first, so the form can mark them all.
    func validate(_ answers: [String: AnswerValue], details: [String: String]) -> [AnswerProblem] {
        var problems: [AnswerProblem] = []
        for item in items {
            guard let answer = answers[item.id] else {
                problems.append(AnswerProblem(item: item.id, message: "is not answered"))
                continue
            }
            if let problem = Self.check(answer, for: item, detail: details[item.id]) {
                problems.append(AnswerProblem(item: item.id, message: problem))
            }
        }
        for id in answers.keys where !items.contains(where: { $0.id == id }) {
            problems.append(AnswerProblem(item: id, message: "is not a question of this version"))
        }
        return problems.sorted { $0.item < $1.item }
    }

    private static func check(_ answer: AnswerValue, for item: Item, detail: String?) -> String? {
        switch (item.type, answer) {
        case (.number, .number(let value)):
            let decimals = item.decimals ?? 0
            let scale = pow(10, Double(decimals))
            guard abs((value * scale).rounded() - value * scale) < 1e-6 else {
                return "must have at most \(decimals) decimal\(decimals == 1 ? "" : "s")"
            }
            guard let minimum = item.minimum, let maximum = item.maximum, value >= minimum, value <= maximum else {
                return "must be from \(item.minimum ?? 0) to \(item.maximum ?? 0)\(item.unit.map { " \($0)" } ?? "")"
            }
            return nil
        case (.single, .choice(let value)):
            return (item.options ?? []).contains(where: { $0.value == value })
                ? nil : "must be one of \(Self.values(item))"
        case (.multiple, .choices(let values)):
            guard !values.isEmpty else { return "must list at least one option (or \(item.exclusive ?? "none"))" }
            guard values.allSatisfy({ value in (item.options ?? []).contains { $0.value == value } }) else {
                return "must list options of \(Self.values(item))"
            }
            if let exclusive = item.exclusive, values.contains(exclusive), values.count > 1 {
                return "`\(exclusive)` cannot be combined with other options"
            }
            return nil
        case (.yesNo, .bool(let yes)):
            if yes, item.followUp != nil {
                let text = detail?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                guard (1...200).contains(text.count) else {
                    return "was answered yes: say \(item.followUp!.label.lowercased()) (1 to 200 characters)"
                }
            }
            return nil
        case (.declaration, .bool(let accepted)):
            return accepted ? nil : "must be accepted"
        case (.number, _): return "must be a number"
        case (.single, _): return "must be one option, as a string"
        case (.multiple, _): return "must be a list of options"
        case (.yesNo, _), (.declaration, _): return "must be true or false"
        }
    }

    private static func values(_ item: Item) -> String {
        (item.options ?? []).map(\.value).joined(separator: ", ")
    }

    /// The rule that decides for valid answers: the first that holds.
    func evaluate(_ answers: [String: AnswerValue]) -> Rule {
        rules.first { $0.when.holds(for: answers) } ?? rules[rules.count - 1]
    }
}
