import Testing
@testable import WeftCore

@Suite("DNS cache") struct DNSCacheTests {
    let question = DNSQuestion(name: dnsName("example.com"), type: .a)
    let soa = DNSRecord(name: dnsName("com"), ttl: 900, data: .soa(DNSSOA(
        primaryServer: dnsName("a.gtld"), responsibleMailbox: dnsName("nstld"), serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 30)))

    func response(_ code: DNSResponseCode = .noError, answers: [DNSRecord] = [], authorities: [DNSRecord] = []) -> DNSMessage {
        var message = DNSMessage(id: 1, questions: [question], answers: answers, authorities: authorities)
        message.flags.isResponse = true
        message.responseCode = code
        return message
    }

    func a(_ ttl: UInt32) -> DNSRecord { DNSRecord(name: dnsName("example.com"), ttl: ttl, data: .a(IPv4Address(127, 0, 0, 2))) }

    @Test func positiveAnswersLiveForTheirSmallestTTLAndCountDown() throws {
        var cache = DNSCache()
        cache.store(response(answers: [a(60), a(20)]), for: question, now: 100)
        let found = cache.lookup(DNSQuestion(name: dnsName("EXAMPLE.com"), type: .a), now: 112.5)
        let later = try #require(found)
        #expect(later.answers.map(\.ttl) == [48, 8])
        #expect(cache.lookup(question, now: 119.9) != nil)
        #expect(cache.lookup(question, now: 120) == nil)
        #expect(cache.lookup(DNSQuestion(name: dnsName("example.com"), type: .aaaa), now: 100) == nil)
    }

    @Test func negativeAnswersLiveForTheSOAMinimum() {
        var cache = DNSCache()
        cache.store(response(.nameError, authorities: [soa]), for: question, now: 0)
        #expect(cache.lookup(question, now: 29)?.responseCode == .nameError)
        #expect(cache.lookup(question, now: 30) == nil)
        // NODATA likewise; without an SOA nothing is cached.
        cache.store(response(authorities: [soa]), for: question, now: 0)
        #expect(cache.lookup(question, now: 10)?.answers == [])
        var bare = DNSCache()
        bare.store(response(.nameError), for: question, now: 0)
        #expect(bare.count == 0)
    }

    @Test func failuresTruncationAndZeroTTLAreNotCachedAndTTLsAreCapped() throws {
        var cache = DNSCache(maximumTTL: 100)
        cache.store(response(.serverFailure), for: question, now: 0)
        var truncated = response(answers: [a(60)])
        truncated.flags.isTruncated = true
        cache.store(truncated, for: question, now: 0)
        cache.store(response(answers: [a(0)]), for: question, now: 0)
        #expect(cache.count == 0)
        cache.store(response(answers: [a(86400)]), for: question, now: 0)
        let capped = cache.lookup(question, now: 1)
        #expect(capped?.answers.first?.ttl == 99)
        #expect(cache.lookup(question, now: 100) == nil)
    }

    @Test func aFullCacheDropsTheOldestEntry() {
        var cache = DNSCache(capacity: 3)
        let names = (0..<5).map { DNSQuestion(name: dnsName("n\($0).example"), type: .a) }
        for (index, name) in names.enumerated() {
            cache.store(response(answers: [a(60)]), for: name, now: Double(index))
        }
        #expect(cache.count == 3)
        #expect(cache.lookup(names[0], now: 5) == nil && cache.lookup(names[1], now: 5) == nil)
        #expect(cache.lookup(names[4], now: 5) != nil)
    }
}
