using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Irr.Eval;
using Irr.Model;
using Irr.Tests.IO;
using Irr.Text;

namespace Irr.Tests.Eval;

/// <summary>
/// A thinking model behind a serving engine: --template-arg reaches vLLM as chat_template_kwargs, and the reasoning of an
/// answer, given apart (vLLM's --reasoning-parser: message.reasoning_content) or inside the text (&lt;think&gt;…&lt;/think&gt;),
/// is recorded apart from the response. The replies are written by hand here.
/// </summary>
public partial class EngineTests
{
    private static FakeJudgeServer.Answer ChatReply(string? content, string? reasoning, string field = "reasoning_content") => new(RawBody: new JsonObject
    {
        ["choices"] = new JsonArray(new JsonObject
        {
            ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = content, [field] = reasoning },
            ["finish_reason"] = "stop",
        }),
        ["usage"] = new JsonObject { ["completion_tokens"] = 7 },
    }.ToJsonString());

    [Fact]
    public void ChatTemplateArgsGoToTheServerAndItsReasoningIsRecordedApart()
    {
        using var dir = new TempDir();
        var bodies = new ConcurrentQueue<JsonNode>();
        using var server = new FakeJudgeServer((body, _) =>
        {
            bodies.Enqueue(body);
            string user = (string)body["messages"]!.AsArray()[^1]!["content"]!;
            return user switch
            {
                "alpha" => ChatReply("I can't help with that.", "The user asks for alpha."),
                "beta" => ChatReply(null, "Still thinking when the limit came.", "reasoning"),
                _ => ChatReply("<think>\nr\n</think>\n\nSure.", null), // a server without a reasoning parser
            };
        });
        var job = new GenerateJob
        {
            Model = Llama2Dir(dir), Prompts = PromptFile(dir, "alpha", "beta", "gamma"), MaxNewTokens = 12, OutputPath = dir["out.jsonl"], Overwrite = true,
            Engine = Options(server, EngineOptions.Chat), Chat = new() { TemplateArg = ["enable_thinking=false", "depth={\"n\": 2}"] },
        };
        job.Run();

        Assert.All(bodies, b => Assert.Equal("""{"enable_thinking":false,"depth":{"n":2}}""", b["chat_template_kwargs"]!.ToJsonString()));
        var lines = File.ReadAllLines(dir["out.jsonl"]).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(("I can't help with that.", "The user asks for alpha."), ((string)lines[0]["response"]!, (string?)lines[0]["reasoning"]));
        Assert.Equal(("", "Still thinking when the limit came."), ((string)lines[1]["response"]!, (string?)lines[1]["reasoning"]));
        Assert.Equal(("\n\nSure.", "\nr\n"), ((string)lines[2]["response"]!, (string?)lines[2]["reasoning"]));

        // From the engine cache the reasoning comes back as it was given.
        int asked = server.Requests;
        File.Delete(dir["out.jsonl"]);
        job.Run();
        Assert.Equal(asked, server.Requests);
        Assert.Equal(lines.Select(l => l.ToJsonString()), File.ReadAllLines(dir["out.jsonl"]).Select(l => JsonNode.Parse(l)!.ToJsonString()));
    }

    [Fact]
    public async Task WithoutTemplateArgsNoKwargsAreSent()
    {
        using var dir = new TempDir();
        var bodies = new ConcurrentQueue<JsonNode>();
        using var server = new FakeJudgeServer((body, _) =>
        {
            bodies.Enqueue(body);
            return ChatReply("ok", null);
        });
        using var engine = EngineSession.Open(Options(server, EngineOptions.Chat), Llama2Dir(dir), null, "test");
        var answers = await engine.RespondAsync([new ChatRequest(ChatPrompt.Messages("hi", null))], 8);
        Assert.Null(Assert.Single(bodies)["chat_template_kwargs"]);
        Assert.Equal((null, "ok"), answers[0].Parts);
    }
}
