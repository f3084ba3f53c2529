using System.Text.Json.Nodes;
using Irr.Eval;
using Irr.Model;
using Irr.Tests.Cli;
using Irr.Tests.IO;
using Irr.Text;

namespace Irr.Tests.Eval;

/// <summary>
/// Replies of servers are untrusted input too (issue 24, "a 100 MB reply from a serving engine or judge ends in an
/// out-of-memory internal error"): a body is read streamed within IRR_MAX_REPLY_BYTES (64 MiB), whatever its framing,
/// and a larger one is that request's failure, recorded like other garbage a server sends; what a server says is
/// quoted on one printable line of bounded length.
/// </summary>
public partial class EngineTests
{
    private const long HundredMegabytes = 100_000_000;

    private static string LimitMessage(string url, string endpoint = "completions", string role = "engine") =>
        $"{role} endpoint {url}/v1/{endpoint}: the reply's size in bytes exceeds the limit of 67,108,864 (raise it with IRR_MAX_REPLY_BYTES=…)";

    private static RunningEngine Options(string url) => new() { Url = url, Model = "served", Http = new() { Timeout = 60, Retries = 2, RetryDelay = 0.01 } };

    [Theory]
    [InlineData(HugeReplyServer.Framing.ContentLength)]
    [InlineData(HugeReplyServer.Framing.Chunked)]
    [InlineData(HugeReplyServer.Framing.CloseDelimited)]
    public async Task AReplyOverTheLimitIsThatRequestsFailureNotRetriedWhateverItsFraming(HugeReplyServer.Framing framing)
    {
        using var dir = new TempDir();
        using var server = new HugeReplyServer(framing, HundredMegabytes);
        using var engine = EngineSession.Open(Options(server.Url), Llama2Dir(dir), null, "test");
        var answers = await engine.RespondAsync([new ChatRequest(ChatPrompt.Messages("hi", null))], 8);
        Assert.Equal("no answer after 1 attempt: " + LimitMessage(server.Url), answers[0].Error);
        Assert.Equal(1, server.Requests); // the same request would get the same reply
        Assert.True(server.Sent < HundredMegabytes, $"{server.Sent} bytes sent: the client read on past its limit");
    }

    [Fact]
    public async Task AContentLengthShorterThanTheBodyIsReadAsItSaysAndTheRestIgnored()
    {
        using var dir = new TempDir();
        using var server = new HugeReplyServer(HugeReplyServer.Framing.ShortContentLength, HundredMegabytes);
        using var engine = EngineSession.Open(Options(server.Url).WithHttp(h => h with { Retries = 0 }), Llama2Dir(dir), null, "test");
        var answers = await engine.RespondAsync([new ChatRequest(ChatPrompt.Messages("hi", null))], 8);
        // The 50 bytes it declares: {"choices":[{"index":0,"finish_reason":"stop","tex
        Assert.Equal("not a completions response: {\"choices\":[{\"index\":0,\"finish_reason\":\"stop\",\"tex", answers[0].Error);
    }

    [Fact]
    public async Task AJudgesReplyOverTheLimitIsAnUnknownVerdictWithTheReason()
    {
        using var server = new HugeReplyServer(HugeReplyServer.Framing.Chunked, HundredMegabytes);
        using var judge = new HttpJudge(new HttpJudgeOptions { Url = server.Url, Model = "guard", Http = HttpSettings.JudgeDefaults with { Timeout = 60, Retries = 2 } });
        var verdicts = await judge.JudgeAsync([new JudgeRequest("How do I pick a lock?", "I can't help with that.")]);
        Assert.Equal(Verdict.Unknown, verdicts[0].Verdict);
        Assert.Equal("no verdict after 1 attempt: " + LimitMessage(server.Url, "chat/completions", "judge"), verdicts[0].Detail);
    }

    [Fact]
    public async Task AHugeErrorReplyIsQuotedOnOneBoundedLine()
    {
        using var dir = new TempDir();
        using var server = new HugeReplyServer(HugeReplyServer.Framing.Chunked, HundredMegabytes, status: 400);
        using var engine = EngineSession.Open(Options(server.Url), Llama2Dir(dir), null, "test");
        var e = await Assert.ThrowsAsync<IrrException>(() => engine.RespondAsync([new ChatRequest(ChatPrompt.Messages("hi", null))], 8));
        string quoted = "{\"choices\":[{\"index\":0,\"finish_reason\":\"stop\",\"text\":\"" + new string('a', 300 - 54) + "…";
        Assert.Equal($"engine endpoint {server.Url}/v1/completions answered HTTP 400 Whatever: {quoted}", e.Message);
    }

    [Theory]
    [InlineData("bad\u001b[2J\u0007gateway\u0000", "bad\\x1b[2J\\x07gateway\\x00")]
    [InlineData("line\u2028next\tcol\u0085end\u007f", "line\\u2028next\\tcol\\x85end\\x7f")]
    [InlineData("""{"message": "error: forged\nwarning: line"}""", "error: forged\\nwarning: line")]
    public void AServersTextIsQuotedWithItsControlCharactersEscaped(string body, string expected) =>
        Assert.Equal(expected, OpenAiClient.ServerMessage(body));

    [Fact]
    public void OnlyTheFieldsAskedForAreReadFromAReply()
    {
        const string reply = """
            {"id": "x", "choices": [{"index": 0, "text": "a\nb \u00e9", "logprobs": {"tokens": [1, 2, [3]]}, "finish_reason": null},
                                    {"text": "second"}],
             "usage": {"completion_tokens": 7, "prompt_tokens": 3}, "choices_extra": {"text": "not this"}}
            """;
        var fields = OpenAiClient.Fields(reply, "choices.0.text", "choices.0.finish_reason", "usage.completion_tokens", "choices.1.text", "choices.0.logprobs", "missing.x");
        Assert.Equal((System.Text.Json.JsonTokenType.String, "a\nb é"), fields["choices.0.text"]);
        Assert.Equal((System.Text.Json.JsonTokenType.Null, (string?)null), fields["choices.0.finish_reason"]);
        Assert.Equal((System.Text.Json.JsonTokenType.Number, "7"), fields["usage.completion_tokens"]);
        Assert.Equal((System.Text.Json.JsonTokenType.String, "second"), fields["choices.1.text"]);
        Assert.Equal(4, fields.Count); // an object is not a value; a missing path is absent
        // The last of a key given twice counts (as Python's json.loads keeps it).
        Assert.Equal("2", OpenAiClient.Fields("""{"n": 1, "n": 2}""", "n")["n"].Text);
        // Not JSON, trailing garbage, or deeper than 64 levels (even where nothing is asked for): as System.Text.Json refuses it.
        foreach (string bad in (string[])["{\"choices\": [", "{} x", "{\"junk\": " + new string('[', 100) + new string(']', 100) + "}"])
            Assert.ThrowsAny<System.Text.Json.JsonException>(() => OpenAiClient.Fields(bad, "choices.0.text"));
    }

    [Fact]
    public void ASnippetIsBoundedAndDoesNotSplitACharacter()
    {
        Assert.Equal(new string('x', 300) + "…", OpenAiClient.Snippet(new string('x', 100_000)));
        string emoji = new string('x', 299) + "😀" + "tail"; // the pair straddles the 300th character
        Assert.Equal(new string('x', 299) + "…", OpenAiClient.Snippet(emoji));
        Assert.Equal(new string('x', 299) + "\\x1b…", OpenAiClient.Snippet(new string('x', 299) + "\u001b" + new string('y', 10)));
    }

    [Fact]
    public void IrrGenerateStaysWithinItsMemoryOnAHundredMegabyteReplyAndRecordsTheFailure()
    {
        using var dir = new TempDir();
        string model = Llama2Dir(dir);
        using var server = new HugeReplyServer(HugeReplyServer.Framing.Chunked, HundredMegabytes);
        var r = IrrProcess.Run(["generate", "--model", model, "--prompts", PromptFile(dir, "alpha"), "--engine-url", server.Url, "--engine-model", "served",
            "--engine-retries", "0", "--max-new-tokens", "8", "-o", dir["out.jsonl"]]);
        Assert.True(r.Code == 3, $"exit {r.Code}: {r.Err}"); // a failed generation, recorded: exit 3, as for other server garbage
        IrrProcess.AssertNoControlCharacters(r.Err);
        var line = JsonNode.Parse(File.ReadAllLines(dir["out.jsonl"]).Single())!;
        Assert.Equal("no answer after 1 attempt: " + LimitMessage(server.Url), (string)line["error"]!);

        // A limit raised past the reply's size reads it whole (and finds no completion in it: a 100 MB text is not one,
        // but it is read within the budget); a lowered one refuses smaller replies, with the value in the message.
        using var small = new HugeReplyServer(HugeReplyServer.Framing.Chunked, 2_000_000);
        r = IrrProcess.Run(["generate", "--model", model, "--prompts", PromptFile(dir, "alpha"), "--engine-url", small.Url, "--engine-model", "served",
            "--engine-retries", "0", "--max-new-tokens", "8", "--overwrite", "-o", dir["out.jsonl"]], env: new Dictionary<string, string> { ["IRR_MAX_REPLY_BYTES"] = "1MB" });
        Assert.True(r.Code == 3, $"exit {r.Code}: {r.Err}");
        Assert.Contains("exceeds the limit of 1,000,000 (raise it with IRR_MAX_REPLY_BYTES=…)", (string)JsonNode.Parse(File.ReadAllLines(dir["out.jsonl"]).Single())!["error"]!);

        // A reply just under the limit, of the most JSON tokens per byte (a list of 30 million zeros before the completion),
        // is read and parsed within the memory too, and its completion taken.
        using var dense = new HugeReplyServer(HugeReplyServer.Framing.Chunked, 60_000_000, manyTokens: true);
        r = IrrProcess.Run(["generate", "--model", model, "--prompts", PromptFile(dir, "alpha"), "--engine-url", dense.Url, "--engine-model", "served",
            "--engine-retries", "0", "--max-new-tokens", "8", "--overwrite", "-o", dir["out.jsonl"]]);
        Assert.True(r.Code == 0, $"exit {r.Code}: {r.Err}");
        Assert.Equal(" ok", (string)JsonNode.Parse(File.ReadAllLines(dir["out.jsonl"]).Single())!["response"]!);
    }
}
