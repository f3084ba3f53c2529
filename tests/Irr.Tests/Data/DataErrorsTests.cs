using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Data;

/// <summary>One malformed data file gives the same error line from every command that reads data.</summary>
public class DataErrorsTests
{
    public static TheoryData<string, string, string> Malformed => new()
    {
        { "data.jsonl", "{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": \"a\", \"response\n", "error: data.jsonl line 2: not valid JSON" },
        { "data.json", "[{\"prompt\": \"a\", \"response\": \"b\"}, {\"prompt\": 3, \"response\": \"b\"}]",
            "error: data.json: [1].prompt: expected a string or an object {instruction, input}, found the number 3" },
        { "data.jsonl", "{\"prompt\": \"a\", \"response\": \"b\"}\n\n{\"text\": \"b\", \"response\": \"b\"}\n",
            "error: data.jsonl line 3: missing \"prompt\", \"instruction\", \"question\", \"goal\" or \"behavior\"" },
        { "data.csv", "prompt,response\na,b\nc\n", "error: data.csv line 3: 1 fields, but the header has 2" },
        { "data.csv", "id,response\n1,b\n", "error: data.csv line 1: no \"prompt\", \"instruction\", \"question\", \"goal\" or \"behavior\" column in the header (id, response)" },
        { "catqa.json", "{\"Illegal Activity\": {\"Drug\": [4, \"a\"]}}", "error: catqa.json: Illegal Activity.Drug[0]: expected a string or an object with" },
        { "missing.jsonl", "", "error: missing.jsonl: file not found" },
    };

    // The commands whose missing data file is named by its option, and that option.
    private static readonly Dictionary<string, string> NamedByOption = new()
    {
        ["generate"] = "prompts", ["eval safety"] = "prompts", ["eval task"] = "data", ["fisher"] = "data", ["train"] = "data",
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void EveryCommandGivesTheSameErrorLine(string name, string text, string expected)
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        string data = dir[name];
        if (name != "missing.jsonl") File.WriteAllText(data, text);
        string[][] commands =
        [
            ["generate", "--model", model, "--prompts", data, "-o", dir["out.jsonl"]],
            ["eval", "safety", "--model", model, "--prompts", data, "-o", dir["out"]],
            ["eval", "task", "--model", model, "--data", data, "--metric", "exact", "-o", dir["out"]],
            ["fisher", "--model", model, "--data", data, "-o", dir["f.safetensors"]],
            ["train", "--model", model, "--data", data, "--lora", "-o", dir["adapter"]],
        ];
        var lines = commands.Select(args =>
        {
            var (code, _, error) = CliRunner.Run(args);
            Assert.True(code == 2, $"{string.Join(' ', args[..2])}: exit {code}: {error}");
            return (Command: args[0] == "eval" ? $"eval {args[1]}" : args[0], Line: error.Split('\n').Single(l => l.StartsWith("error: ", StringComparison.Ordinal)));
        }).ToList();
        // A missing file is refused before the job runs by a command derived from its job's schema, naming its option (issue 25).
        var named = name == "missing.jsonl" ? lines.Where(l => NamedByOption.ContainsKey(l.Command)).ToList() : [];
        foreach (var l in named) Assert.Equal($"error: {l.Command}: {NamedByOption[l.Command]} {data}: no such file or directory", l.Line);
        Assert.Equal(name == "missing.jsonl" ? commands.Length : 0, named.Count); // every command here is derived from its job's schema
        lines = lines.Except(named).ToList();
        if (lines.Count > 0) Assert.StartsWith(expected, lines[0].Line);
        Assert.All(lines, l => Assert.Equal((l.Command, lines[0].Line), l));
        Assert.False(File.Exists(dir["out.jsonl"]) || Directory.Exists(dir["out"]) || File.Exists(dir["f.safetensors"]) || Directory.Exists(dir["adapter"]));
    }
}
