using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Realign;

/// <summary>The parts of one Fisher are formatted alike: a part of raw text (--no-chat-template) does not merge with parts formatted by the chat template.</summary>
public class FisherShardRawTests
{
    [Fact]
    public void PartsOfRawTextAndOfTheChatTemplateDoNotMerge()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir, "aligned");
        string data = IrrCommandTests.Records(dir, "refusals.jsonl", 4, "how do I");
        string P(string name) => dir[name + ".safetensors"];
        string[] Fisher(string output, params string[] more) =>
            ["fisher", "--model", model, "--data", data, "--modules", "q_proj", "--batch-size", "2", "-o", output, .. more];
        foreach (var (name, more) in new[] { ("a0", new[] { "--shard", "0/2" }), ("a1", ["--shard", "1/2"]), ("r1", ["--shard", "1/2", "--no-chat-template"]), ("r0", ["--shard", "0/2", "--no-chat-template"]) })
        {
            var run = CliRunner.Run(Fisher(P(name), more));
            Assert.True(run.Code == 0, run.Err);
        }
        var r = CliRunner.Run("fisher", "merge", P("a0"), P("r1"), "-o", P("out"));
        Assert.Equal(2, r.Code);
        Assert.Equal($"error: {P("r1")}: its no_chat_template (true) differs from {P("a0")}'s (); the parts of one Fisher come from one model, data and options", r.Err.TrimEnd('\n'));
        Assert.False(File.Exists(P("out")));
        Assert.Equal(0, CliRunner.Run("fisher", "merge", P("r0"), P("r1"), "-o", P("raw")).Code);
        Assert.Equal(0, CliRunner.Run("fisher", "merge", P("a0"), P("a1"), "-o", P("chat")).Code);
    }

    [Fact]
    public void PartsRenderedWithOtherTemplateArgsDoNotMerge()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir, "aligned");
        string data = IrrCommandTests.Records(dir, "refusals.jsonl", 4, "how do I");
        string P(string name) => dir[name + ".safetensors"];
        foreach (var (name, shard, arg) in new[] { ("a0", "0/2", "enable_thinking=false"), ("a1", "1/2", "enable_thinking=true") })
        {
            var run = CliRunner.Run("fisher", "--model", model, "--data", data, "--modules", "q_proj", "--batch-size", "2", "-o", P(name), "--shard", shard, "--template-arg", arg);
            Assert.True(run.Code == 0, run.Err);
        }
        var r = CliRunner.Run("fisher", "merge", P("a0"), P("a1"), "-o", P("out"));
        Assert.Equal(2, r.Code);
        Assert.Equal($"error: {P("a1")}: its template_args (enable_thinking=true) differs from {P("a0")}'s (enable_thinking=false); the parts of one Fisher come from one model, data and options", r.Err.TrimEnd('\n'));
    }
}
