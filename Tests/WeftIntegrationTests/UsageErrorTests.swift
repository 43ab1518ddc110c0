import Testing
@testable import weft

@Suite("weft usage errors")
struct UsageErrorTests {
    @Test("the command named in a usage error is the deepest subcommand given")
    func invokedCommand() {
        #expect(Weft.invokedCommand(["token", "create", "--ttl", "x"]) == "weft token create")
        #expect(Weft.invokedCommand(["get", "token"]) == "weft get")
        #expect(Weft.invokedCommand(["--bogus", "get"]) == "weft")
    }

    @Test("a message of several lines becomes one; only usage errors point at the help")
    func oneLine() {
        #expect(Weft.errorLine("Missing value\n  for --x\n", help: "weft get") == "error: Missing value; for --x (see `weft get --help`)")
        #expect(Weft.errorLine("cannot bind 127.0.0.1:7443: address in use", help: nil) == "error: cannot bind 127.0.0.1:7443: address in use")
    }
}
