import Logging
import Testing
import YunzhenServiceKit

@Suite struct EnvironmentReaderTests {
    @Test func missingRequiredValueNamesTheVariable() throws {
        let error = #expect(throws: ConfigurationError.self) {
            try DataRoot.directory(for: .registration, environment: EnvironmentReader([:]))
        }
        #expect(error?.variable == "YUNZHEN_DATA")
        #expect(error?.description.contains("YUNZHEN_DATA") == true)
    }

    @Test func portThatIsNotANumberIsRefusedByName() throws {
        let error = #expect(throws: ConfigurationError.self) {
            try ServerSettings.read(from: EnvironmentReader(["YUNZHEN_PORT": "abc"]), defaultPort: 8101)
        }
        #expect(error?.variable == "YUNZHEN_PORT")
        #expect(error?.problem.contains("abc") == true)
    }

    @Test func portOutOfRangeIsRefused() {
        #expect(
            throws: ConfigurationError(variable: "YUNZHEN_PORT", problem: "\"70000\" is not a port number (0-65535)")
        ) {
            try ServerSettings.read(from: EnvironmentReader(["YUNZHEN_PORT": "70000"]), defaultPort: 8101)
        }
    }

    @Test func unknownLogLevelListsTheAllowedOnes() {
        let error = #expect(throws: ConfigurationError.self) {
            try ServerSettings.read(from: EnvironmentReader(["YUNZHEN_LOG_LEVEL": "loud"]), defaultPort: 8101)
        }
        #expect(error?.variable == "YUNZHEN_LOG_LEVEL")
        #expect(error?.problem.contains("debug") == true)
    }

    @Test func defaultsApplyWhenUnsetOrEmpty() throws {
        let settings = try ServerSettings.read(
            from: EnvironmentReader(["YUNZHEN_PORT": "", "YUNZHEN_LOG_FORMAT": "json", "YUNZHEN_LOG_LEVEL": "DEBUG"]),
            defaultPort: 8103
        )
        #expect(settings == ServerSettings(host: "127.0.0.1", port: 8103, logLevel: .debug, logFormat: .json))
    }

    @Test func baseURLMustBeHTTP() throws {
        let reader = EnvironmentReader(["YUNZHEN_UPSTREAM_REPORTS": "ftp://example"])
        #expect(throws: ConfigurationError.self) {
            try reader.baseURL("YUNZHEN_UPSTREAM_REPORTS", default: "http://127.0.0.1:8102")
        }
        let trimmed = try EnvironmentReader(["U": "http://127.0.0.1:9/"]).baseURL("U", default: "")
        #expect(trimmed == "http://127.0.0.1:9")
    }
}
