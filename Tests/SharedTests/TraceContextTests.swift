import Testing
import YunzhenCallout

@Suite struct TraceContextTests {
    @Test func validHeaderKeepsTraceAndFlagsWithANewSpan() {
        let trace = TraceContext.continuing(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        #expect(trace.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(trace.spanID != "00f067aa0ba902b7")
        #expect(trace.flags == "01")
        #expect(trace.traceparent.hasPrefix("00-4bf92f3577b34da6a3ce929d0e0e4736-"))
    }

    @Test(arguments: [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // all-zero parent id
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // uppercase
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // forbidden version
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // v00 has four fields
        "garbage",
    ])
    func invalidHeaderStartsANewTrace(header: String) {
        let trace = TraceContext.continuing(traceparent: header)
        #expect(trace.traceID != "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(trace.traceID.count == 32)
        #expect(trace.spanID.count == 16)
    }
}
