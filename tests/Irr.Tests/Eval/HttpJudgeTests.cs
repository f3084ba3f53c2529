using System.Diagnostics;
using Irr.Eval;
using Irr.Tests.IO;

namespace Irr.Tests.Eval;

/// <summary>The HTTP judge against a real HTTP server on 127.0.0.1 that plays the judge model.</summary>
public class HttpJudgeTests
{
    private const string Key = "sk-test-SECRET-4f9a1c";

    private static HttpJudgeOptions Options(FakeJudgeServer server, JudgeProtocol protocol = JudgeProtocol.LlamaGuard) => new()
    {
        Url = server.Url,
        Model = "judge-model",
        Protocol = JudgeProtocols.Name(protocol),
        Http = new()
        {
            ApiKey = Key,
            Concurrency = 3,
            Timeout = 30, // generous: the test machine may be busy; only the hang test, whose timeout is meant to fire, sets 0.5 s
            Retries = 2,
            RetryDelay = 0.01,
        },
    };

    private static JudgeRequest[] Requests(params string[] responses) => responses.Select((r, i) => new JudgeRequest($"harmful request {i}", r)).ToArray();

    [Fact]
    public async Task LlamaGuardVerdictsArriveInOrderWithTheKeyAndTheConversation()
    {
        // The server answers from the assistant message: "ok:" → safe, "bad:" → unsafe S2 (Llama Guard 3), "old:" → unsafe O3 (Llama Guard 1/2).
        using var server = new FakeJudgeServer((body, _) =>
        {
            string response = FakeJudgeServer.AssistantText(body);
            return new(Content: response.StartsWith("ok:") ? "safe" : response.StartsWith("bad:") ? "\n\nunsafe\nS2" : "unsafe\nO3");
        });
        using var judge = new HttpJudge(Options(server));
        var requests = Requests("ok: no", "bad: here is how", "old: sure", "ok: never", "bad: step 1");
        int progressed = 0;
        var results = await judge.JudgeAsync(requests, n => progressed += n);

        Assert.Equal([Verdict.Safe, Verdict.Harmful, Verdict.Harmful, Verdict.Safe, Verdict.Harmful], results.Select(r => r.Verdict));
        Assert.Equal("unsafe\nS2", results[1].Detail);
        Assert.Equal("unsafe\nO3", results[2].Detail);
        Assert.Equal(5, progressed);
        Assert.Equal(5, server.Requests);
        Assert.All(server.AuthorizationHeaders, h => Assert.Equal($"Bearer {Key}", h));
        Assert.All(server.Paths, p => Assert.Equal("/v1/chat/completions", p));
        Assert.True(server.MaxInFlight <= 3, $"{server.MaxInFlight} requests in flight with concurrency 3");
        Assert.Equal("http:llama-guard:judge-model", judge.Name);
    }

    [Fact]
    public async Task MdJudgeAndVerdictPromptsAreSentAndParsed()
    {
        using var server = new FakeJudgeServer((body, _) =>
        {
            string user = FakeJudgeServer.UserText(body);
            if (user.Contains("<BEGIN CONVERSATION>"))
                return new(Content: user.Contains("Agent: bad") ? "[REASONING]: it helps.\n[RESULT]: unsafe, score 5\n[UNSAFE CATEGORY]: O14: Illegal Activities." : "[REASONING]: refuses.\n[RESULT]: safe, score 1");
            return new(Content: user.Contains("[RESPONSE]\nbad") ? "It gives the steps. [[B]]" : "It refuses. [[A]]");
        });
        using var md = new HttpJudge(Options(server, JudgeProtocol.MdJudge));
        var r = await md.JudgeAsync(Requests("bad answer", "no"));
        Assert.Equal((Verdict.Harmful, 5), (r[0].Verdict, r[0].Score));
        Assert.Equal((Verdict.Safe, 1), (r[1].Verdict, r[1].Score));
        using var generic = new HttpJudge(Options(server, JudgeProtocol.Verdict));
        var g = await generic.JudgeAsync(Requests("bad answer", "no"));
        Assert.Equal([Verdict.Harmful, Verdict.Safe], g.Select(x => x.Verdict));
    }

    [Fact]
    public async Task MalformedVerdictsAreUnknownWithTheRawText()
    {
        using var server = new FakeJudgeServer((body, n) => FakeJudgeServer.AssistantText(body) switch
        {
            "a" => new(Content: "I think it is probably fine"),
            "b" => new(RawBody: "<html>proxy error</html>"),
            _ => new(Content: "safe"),
        });
        using var judge = new HttpJudge(Options(server));
        var results = await judge.JudgeAsync(Requests("a", "b", "c"));
        Assert.Equal([Verdict.Unknown, Verdict.Unknown, Verdict.Safe], results.Select(r => r.Verdict));
        Assert.Equal("I think it is probably fine", results[0].Detail);
        Assert.Contains("proxy error", results[1].Detail);
        Assert.Equal(3, server.Requests); // unparseable replies are not retried
    }

    [Fact]
    public async Task JsonOfAnotherShapeIsUnknownNotACrash()
    {
        // Valid JSON that is not a chat-completions reply: an array, choices as an object, a choice or a message as a string.
        string[] bodies = ["[1, 2]", """{"choices": {"message": "safe"}}""", """{"choices": ["safe"]}""", """{"choices": [{"message": "safe"}]}"""];
        using var server = new FakeJudgeServer((body, _) => FakeJudgeServer.AssistantText(body) is var r && int.TryParse(r, out int i) ? new(RawBody: bodies[i]) : new(Content: "safe"));
        using var judge = new HttpJudge(Options(server));
        var results = await judge.JudgeAsync(Requests("0", "1", "2", "3", "fine"));
        Assert.Equal([Verdict.Unknown, Verdict.Unknown, Verdict.Unknown, Verdict.Unknown, Verdict.Safe], results.Select(r => r.Verdict));
        for (int i = 0; i < bodies.Length; i++) Assert.Equal($"not a chat-completions response: {bodies[i]}", results[i].Detail);
    }

    [Fact]
    public async Task ServerErrorsAreRetriedUntilSuccessAndRetryAfterIsRespected()
    {
        using var server = new FakeJudgeServer((_, n) => n switch
        {
            1 => new(Status: 500),
            2 => new(Status: 503),
            _ => new(Content: "unsafe\nS1"),
        });
        using var judge = new HttpJudge(Options(server).WithHttp(h => h with { Concurrency = 1 }));
        var results = await judge.JudgeAsync(Requests("x"));
        Assert.Equal(Verdict.Harmful, results[0].Verdict);
        Assert.Equal(3, server.Requests);

        // 429 with Retry-After: 1 waits about a second although the base delay is 10 ms.
        using var limited = new FakeJudgeServer((_, n) => n == 1 ? new(Status: 429, RetryAfter: "1") : new(Content: "safe"));
        using var judge2 = new HttpJudge(Options(limited).WithHttp(h => h with { Concurrency = 1 }));
        var clock = Stopwatch.StartNew();
        var r2 = await judge2.JudgeAsync(Requests("x"));
        Assert.Equal(Verdict.Safe, r2[0].Verdict);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(0.9), $"retried after {clock.Elapsed.TotalSeconds:F2} s");
    }

    [Fact]
    public async Task AHangingServerTimesOutIsRetriedAndEndsUnknown()
    {
        // The server would answer after 20 s: the short timeout is meant to fire, so load cannot make this test fail.
        int hangs = 0;
        using var server = new FakeJudgeServer((_, _) =>
        {
            Interlocked.Increment(ref hangs);
            return new(Delay: TimeSpan.FromSeconds(20), Content: "safe");
        });
        using var judge = new HttpJudge(Options(server).WithHttp(h => h with { Timeout = 0.5 }));
        var results = await judge.JudgeAsync(Requests("hang"));
        Assert.Equal(Verdict.Unknown, results[0].Verdict);
        Assert.Contains("no verdict after 3 attempts", results[0].Detail);
        Assert.Contains("no answer within 0.5 s", results[0].Detail);
        Assert.Equal(3, Volatile.Read(ref hangs)); // the first attempt and MaxRetries = 2 retries
    }

    [Fact]
    public async Task AnAuthorizationErrorStopsWithAMessageWithoutTheKey()
    {
        using var server = new FakeJudgeServer((_, _) => new(Status: 401, RawBody: $"{{\"error\": \"bad key {Key}\"}}"));
        using var judge = new HttpJudge(Options(server));
        var e = await Assert.ThrowsAsync<IrrException>(() => judge.JudgeAsync(Requests("x")));
        Assert.Contains("401", e.Message);
        Assert.DoesNotContain(Key, e.Message);
        Assert.Equal(1, server.Requests);

        // Of many requests, those not yet sent when the 401 came back are not sent (3 in flight at most).
        int before = server.Requests;
        await Assert.ThrowsAsync<IrrException>(() => judge.JudgeAsync(Requests([.. Enumerable.Range(0, 30).Select(i => $"r{i}")])));
        Assert.True(server.Requests - before <= 6, $"{server.Requests - before} of 30 requests sent after a configuration error");
    }

    [Fact]
    public async Task ARerunIsServedFromTheCacheWithoutNewRequests()
    {
        using var dir = new TempDir();
        string cachePath = dir["judge-cache.jsonl"];
        using var server = new FakeJudgeServer((body, _) => FakeJudgeServer.AssistantText(body) switch
        {
            "garbled" => new(Content: "???"),
            "bad" => new(Content: "unsafe\nS3"),
            _ => new(Content: "safe"),
        });
        var requests = Requests("bad", "fine", "garbled", "also fine");
        using (var judge = new HttpJudge(Options(server), VerdictCache.Open(cachePath)))
            await judge.JudgeAsync(requests);
        Assert.Equal(4, server.Requests);
        Assert.Equal(3, File.ReadAllLines(cachePath).Length); // the unknown is not cached

        // Simulate an interrupted write: a truncated last line is skipped.
        File.AppendAllText(cachePath, "{\"key\": \"abc\", \"verd");
        var cache = VerdictCache.Open(cachePath);
        Assert.Equal(3, cache.Count);
        Assert.Equal(1, cache.SkippedLines);
        using (var judge = new HttpJudge(Options(server), cache))
        {
            var again = await judge.JudgeAsync(requests);
            Assert.Equal([Verdict.Harmful, Verdict.Safe, Verdict.Unknown, Verdict.Safe], again.Select(r => r.Verdict));
        }
        Assert.Equal(4 + 1, server.Requests); // only the unknown was asked again
        string text = File.ReadAllText(cachePath);
        Assert.DoesNotContain(Key, text);
        Assert.DoesNotContain("harmful request", text); // keys are hashes, not the prompts
        // The same pair under another judge name (another model) is a different key.
        Assert.NotEqual(VerdictCache.Key("http:llama-guard:a", requests[0]), VerdictCache.Key("http:llama-guard:b", requests[0]));
    }

    [Fact]
    public async Task AJudgeThatRefusesOneLongConversationGivesThatOneUnknownAndAsksItAgainOnARerun()
    {
        // vLLM's answer when the judged conversation and max_tokens exceed the judge's max_model_len (serving_engine.py).
        const string tooLong = """{"object":"error","message":"This model's maximum context length is 8192 tokens. However, you requested 8224 tokens (8192 in the messages, 32 in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}""";
        using var dir = new TempDir();
        string cachePath = dir["judge-cache.jsonl"];
        using var server = new FakeJudgeServer((body, _) => FakeJudgeServer.AssistantText(body) == "endless" ? new(Status: 400, RawBody: tooLong) : new(Content: "safe"));
        var requests = Requests("fine", "endless", "also fine");
        for (int run = 1; run <= 2; run++)
        {
            using var judge = new HttpJudge(Options(server), VerdictCache.Open(cachePath));
            var results = await judge.JudgeAsync(requests);
            Assert.Equal([Verdict.Safe, Verdict.Unknown, Verdict.Safe], results.Select(r => r.Verdict));
            Assert.Equal("refused: HTTP 400 Bad Request: This model's maximum context length is 8192 tokens. However, you requested 8224 tokens " +
                         "(8192 in the messages, 32 in the completion). Please reduce the length of the messages or completion.", results[1].Detail);
            Assert.Equal(3 + (run - 1), server.Requests); // not retried within a run; asked again (only it) on the rerun
        }
        Assert.Equal(2, File.ReadAllLines(cachePath).Length);
    }

    [Theory]
    [InlineData("http://h:8000", "http://h:8000/v1/chat/completions")]
    [InlineData("http://h:8000/", "http://h:8000/v1/chat/completions")]
    [InlineData("http://h:8000/v1", "http://h:8000/v1/chat/completions")]
    [InlineData("https://h/api/v1/chat/completions", "https://h/api/v1/chat/completions")]
    public void EndpointUrls(string given, string expected) => Assert.Equal(expected, HttpJudge.Endpoint(new Uri(given)).ToString());
}
