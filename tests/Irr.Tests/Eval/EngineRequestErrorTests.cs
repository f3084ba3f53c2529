using System.Text.Json.Nodes;
using Irr.Eval;
using Irr.Model;
using Irr.Tests.Cli;
using Irr.Tests.IO;
using Irr.Text;

namespace Irr.Tests.Eval;

/// <summary>
/// Errors about one request against configuration errors (issue 23, item 4). The error bodies are those the servers
/// send: vLLM's <c>create_error_response</c> (<c>{"object": "error", "message", "type", "param", "code"}</c>, vllm/entrypoints/openai/serving_engine.py),
/// with its messages for a prompt over max_model_len (HTTP 400) and for a model it does not serve (HTTP 404); TGI's
/// validation error (HTTP 422, <c>{"error", "error_type": "validation"}</c>); llama.cpp server's
/// <c>{"error": {"code", "message", "type": "exceed_context_size_error"}}</c>.
/// </summary>
public partial class EngineTests
{
    // vLLM 0.6 – 0.10's messages (serving_engine.py _validate_input), verbatim but for the numbers.
    private const string VllmTooLong =
        """{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 4608 tokens (4096 in the messages, 512 in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}""";
    private const string VllmWrongModel = """{"object":"error","message":"The model `served` does not exist.","type":"NotFoundError","param":null,"code":404}""";

    [Theory]
    // vLLM, prompt + max_tokens over max_model_len (older and newer wording), and a prompt alone over it.
    [InlineData(400, "This model's maximum context length is 4096 tokens. However, you requested 4608 tokens (4096 in the messages, 512 in the completion).", true)]
    [InlineData(400, "'max_tokens' or 'max_completion_tokens' is too large: 512. This model's maximum context length is 4096 tokens and your request has 3900 input tokens (512 > 4096 - 3900).", true)]
    [InlineData(400, "The decoder prompt (length 5000) is longer than the maximum model length of 4096. Make sure that `max_model_len` is no smaller than the number of text tokens.", true)]
    // TGI (422) and llama.cpp's server (400).
    [InlineData(422, "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 512 `max_new_tokens`", true)]
    [InlineData(400, "the request exceeds the available context size, try increasing it", true)]
    [InlineData(413, "Payload Too Large", true)]
    // Hosted APIs refusing one prompt's content (Azure OpenAI's content filter, code content_filter; OpenAI's invalid_prompt
    // and content_policy_violation), as their error documentation words them.
    [InlineData(400, "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.", true)]
    [InlineData(400, "Invalid prompt: your prompt was flagged as potentially violating our usage policy. Please try again with a different prompt.", true)]
    [InlineData(400, "Your request was rejected as a result of our safety system.", true)]
    // Configuration errors: every request would get them.
    [InlineData(404, "The model `served` does not exist.", false)]
    [InlineData(404, "Not Found", false)]
    [InlineData(401, "Incorrect API key provided", false)]
    [InlineData(403, "Forbidden", false)]
    [InlineData(400, "temperature must be non-negative, got -1.0.", false)]
    [InlineData(422, "Input validation error: `temperature` must be strictly positive", false)]
    [InlineData(400, "[{'type': 'extra_forbidden', 'loc': ('body', 'stop_token_ids'), 'msg': 'Extra inputs are not permitted'}]", false)]
    public void PerRequestErrorsAreThoseAboutTheRequestsLength(int status, string message, bool perRequest) =>
        Assert.Equal(perRequest, OpenAiClient.IsPerRequestError(status, message));

    [Theory]
    [InlineData(VllmTooLong, "This model's maximum context length is 4096 tokens. However, you requested 4608 tokens (4096 in the messages, 512 in the completion). Please reduce the length of the messages or completion.")]
    [InlineData("""{"error": {"code": 400, "message": "the request exceeds\nthe available context size", "type": "exceed_context_size_error"}}""", "the request exceeds\\nthe available context size")]
    [InlineData("""{"error": "Input validation error: too long", "error_type": "validation"}""", "Input validation error: too long")]
    [InlineData("""{"detail": "Not Found"}""", "Not Found")]
    [InlineData("<html>\r\nbad gateway</html>", "<html>\\r\\nbad gateway</html>")]
    public void TheServersMessageIsReadFromItsErrorBodyOnOneLine(string body, string expected) => Assert.Equal(expected, OpenAiClient.ServerMessage(body));

    [Fact]
    public void APromptTheEngineRefusesForItsLengthIsOneRecordedFailureAgainOnEveryRerun()
    {
        using var dir = new TempDir();
        string model = Llama2Dir(dir);
        using var server = new FakeJudgeServer((body, _) => PromptOf(body).Contains("long") ? new(Status: 400, RawBody: VllmTooLong) : Rule(body));
        var job = new GenerateJob
        {
            Model = model, Prompts = PromptFile(dir, "alpha", "very long", "gamma"), MaxNewTokens = 12,
            OutputPath = dir["out.jsonl"], Overwrite = true, Engine = Options(server).WithHttp(h => h with { Retries = 2 }),
        };
        var warnings = Warnings(() => job.Run());

        Assert.Equal(3, server.Requests); // the refusal is not retried: the same request would be refused again
        var lines = File.ReadAllLines(dir["out.jsonl"]).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(3, lines.Count);
        Assert.Equal(Expected("<s>[INST] alpha [/INST]").Text, (string)lines[0]["response"]!);
        Assert.Equal(Expected("<s>[INST] gamma [/INST]").Text, (string)lines[2]["response"]!);
        string reason = "refused: HTTP 400 Bad Request: This model's maximum context length is 4096 tokens. However, you requested 4608 tokens " +
                        "(4096 in the messages, 512 in the completion). Please reduce the length of the messages or completion.";
        Assert.Equal(reason, (string)lines[1]["error"]!);
        Assert.Equal("error", (string)lines[1]["finish_reason"]!);
        Assert.Equal("", (string)lines[1]["response"]!);
        Assert.Contains(warnings, w => w.StartsWith("1 of 3 generations by served"));
        Assert.Equal(2, File.ReadAllLines(dir["out.engine-cache.jsonl"]).Length); // the refusal is not cached

        // A rerun asks the refused prompt again (the server may have been restarted with a longer max_model_len) and,
        // refused again, records it again: no stop, no cached refusal.
        job.Run();
        Assert.Equal(4, server.Requests);
        Assert.Equal(reason, (string)JsonNode.Parse(File.ReadAllLines(dir["out.jsonl"])[1])!["error"]!);
    }

    [Fact]
    public void TheCommandsExitWith3OnARefusedPromptAndWith2OnAWrongModelName()
    {
        using var dir = new TempDir();
        string model = Llama2Dir(dir);
        bool wrongModel = false;
        using var server = new FakeJudgeServer((body, _) =>
            wrongModel ? new(Status: 404, RawBody: VllmWrongModel)
            : PromptOf(body).Contains("long") ? new(Status: 400, RawBody: VllmTooLong)
            : Rule(body));
        string prompts = PromptFile(dir, "alpha", "very long", "gamma");
        string[] Args(string command) => command switch
        {
            "generate" => ["generate", "--model", model, "--prompts", prompts, "--engine-url", server.Url, "--engine-model", "served", "--overwrite", "-o", dir["gen.jsonl"]],
            "safety" => ["eval", "safety", "--model", model, "--prompts", prompts, "--engine-url", server.Url, "--engine-model", "served", "-o", dir["run"]],
            _ => ["eval", "task", "--model", model, "--data", TaskFile(dir), "--metric", "exact", "--engine-url", server.Url, "--engine-model", "served", "-o", dir["task"]],
        };
        foreach (string command in new[] { "generate", "safety", "task" })
            for (int run = 0; run < 2; run++) // a rerun ends the same way: the refusal is recorded again, nothing stops
            {
                var (code, _, error) = CliRunner.Run(Args(command));
                Assert.True(code == 3, $"{command}: exit {code}: {error}");
                Assert.Contains("error: 1 of 3 generations failed (recorded with their reason)", error);
            }
        Assert.Equal(3, File.ReadAllLines(dir["gen.jsonl"]).Length);
        Assert.Contains("refused: HTTP 400 Bad Request: This model's maximum context length", File.ReadAllText(Path.Combine(dir["run"], "responses.jsonl")));
        Assert.Contains("refused: HTTP 400 Bad Request: This model's maximum context length", File.ReadAllText(Path.Combine(dir["task"], "predictions.jsonl")));

        // A model name the server does not serve is a configuration error at the first request: one line, exit 2.
        wrongModel = true;
        File.Delete(dir["gen.engine-cache.jsonl"]);
        foreach (string command in new[] { "generate", "safety", "task" })
        {
            int before = server.Requests;
            var (code, _, error) = CliRunner.Run([.. Args(command), "--engine-concurrency", "1"]);
            Assert.Equal(2, code);
            // The error is the last line and the only error line; a slow machine may show the progress bar's first line before it.
            string[] lines = error.Trim().Split('\n');
            Assert.Equal($"error: engine endpoint {server.Url}/v1/completions answered HTTP 404 Not Found: The model `served` does not exist. " +
                         "(is engine-model the name the server serves?)", lines[^1]);
            Assert.Single(lines, l => l.StartsWith("error:", StringComparison.Ordinal));
            Assert.All(lines[..^1], l => Assert.Matches(@"^generating \(served\): [0-9]+%", l));
            Assert.True(server.Requests - before <= 1, $"{command}: {server.Requests - before} requests after a configuration error");
        }
    }

    private static string TaskFile(TempDir dir)
    {
        string path = dir["task.jsonl"];
        File.WriteAllLines(path, new[] { "alpha", "very long", "gamma" }.Select(q => new JsonObject { ["question"] = q, ["answer"] = "x" }.ToJsonString()));
        return path;
    }

    [Fact]
    public async Task AnEndpointPathThatIsNotThereAndAServerNeverReachedAreConfigurationErrors()
    {
        using var dir = new TempDir();
        string model = Llama2Dir(dir);
        using var server = new FakeJudgeServer((_, _) => new(Status: 404, RawBody: """{"detail":"Not Found"}"""));
        using (var engine = EngineSession.Open(Options(server).WithHttp(h => h with { Concurrency = 1 }), model, null, "test"))
        {
            var e = await Assert.ThrowsAsync<IrrException>(() => engine.RespondAsync([new ChatRequest(ChatPrompt.Messages("q", null))], 8));
            Assert.Equal($"engine endpoint {server.Url}/v1/completions answered HTTP 404 Not Found: Not Found (is engine-url the server's base, its /v1, or an endpoint?)", e.Message);
        }

        // Nothing listens on the port: a wrong URL or a server that is not up, once the retries are used up.
        string url = $"http://127.0.0.1:{EngineServer.FreePort()}";
        using (var engine = EngineSession.Open((Options(server) with { Url = url }).WithHttp(h => h with { Retries = 1 }), model, null, "test"))
        {
            var requests = Enumerable.Range(0, 4).Select(i => new ChatRequest(ChatPrompt.Messages($"q{i}", null))).ToList();
            var e = await Assert.ThrowsAsync<IrrException>(() => engine.RespondAsync(requests, 8));
            Assert.StartsWith($"engine endpoint {url}/v1/completions could not be reached (2 attempts): request failed: ", e.Message);
            Assert.EndsWith("; is the server up at that URL?", e.Message);
            Assert.DoesNotContain("\n", e.Message);
        }
    }

    [Fact]
    public async Task AServerThatAnsweredOnceAndThenGoesAwayGivesRecordedFailures()
    {
        using var dir = new TempDir();
        string model = Llama2Dir(dir);
        var server = new FakeJudgeServer((body, _) => Rule(body));
        using var engine = EngineSession.Open(Options(server).WithHttp(h => h with { Concurrency = 1, Retries = 0 }), model, null, "test");
        var first = await engine.RespondAsync([new ChatRequest(ChatPrompt.Messages("alpha", null))], 8);
        Assert.Null(first[0].Error);
        server.Dispose(); // the server crashes (out of memory …): the answers so far are good, the rest are failures
        var rest = await engine.RespondAsync([new ChatRequest(ChatPrompt.Messages("beta", null))], 8);
        Assert.StartsWith("no answer after 1 attempt: request failed: ", rest[0].Error);
    }
}
