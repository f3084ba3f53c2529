using Irr.Data;
using Irr.Eval;
using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Data;

/// <summary>A data set without records is refused by the one reader, with one error line, by every command that reads data.</summary>
public class EmptyDataTests
{
    [Theory]
    [InlineData("data.jsonl", "")]
    [InlineData("data.jsonl", "\n  \n\r\n\n")]
    public void EveryCommandRefusesAnEmptyDataSetWithTheSameLine(string name, string text)
    {
        using var w = new SweepWorld();
        string data = w.Dir[name];
        File.WriteAllText(data, text);
        string model = w.Aligned;
        const string expected = "error: data.jsonl: no records (an empty data set)";
        string[] outputs = ["out.json", "out.jsonl", "out", "f2.safetensors", "adapter", "realigned", "sweep"];
        string[][] commands =
        [
            ["score", "--model", model, "--data", data, "-o", w.Dir["out.json"]],
            ["fisher", "--model", model, "--data", data, "-o", w.Dir["f2.safetensors"]],
            ["realign", .. w.RealignArgs.Select(a => a == w.Calibration ? data : a), "-o", w.Dir["realigned"]],
            ["train", "--model", model, "--data", data, "--lora", "-o", w.Dir["adapter"]],
            ["generate", "--model", model, "--prompts", data, "-o", w.Dir["out.jsonl"]],
            ["eval", "safety", "--model", model, "--prompts", data, "-o", w.Dir["out"]],
            ["eval", "safety", "--responses", data, "--judge", "keyword", "-o", w.Dir["out"]],
            ["eval", "task", "--model", model, "--data", data, "--metric", "exact", "-o", w.Dir["out"]],
            ["eval", "ppl", "--model", model, "--data", data, "-o", w.Dir["out"]],
            w.Sweep(w.Dir["sweep"], "--sparsity", "0.5").Select(a => a == w.Harmful ? data : a).ToArray(),
            w.Sweep(w.Dir["sweep"], "--sparsity", "0.5").Select(a => a == w.Task ? data : a).ToArray(),
            w.Sweep(w.Dir["sweep"], "--sparsity", "0.5").Select(a => a == w.Calibration ? data : a).ToArray(),
        ];
        foreach (var args in commands)
        {
            var (code, _, error) = CliRunner.Run(args);
            string command = string.Join(' ', args[..2]);
            Assert.True(code == 2, $"{command}: exit {code}: {error}");
            Assert.Equal(expected, error.Split('\n').Single(l => l.StartsWith("error: ", StringComparison.Ordinal)));
            foreach (string output in outputs)
                Assert.False(File.Exists(w.Dir[output]) || Directory.Exists(w.Dir[output]), $"{command} wrote {output}");
        }
    }

    [Theory]
    [InlineData("empty.jsonl", "\n\n")]
    [InlineData("empty.json", "[]")]
    [InlineData("empty.csv", "")]
    [InlineData("header.csv", "prompt,response\n")]
    [InlineData("empty.txt", "\n\n\n")]
    [InlineData("tree.json", "{\"Illegal Activity\": {\"Drug\": []}}")]
    public void EveryTypedViewRefusesAnEmptyDataSetWithTheSameMessage(string name, string text)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir[name], text);
        string expected = $"{name}: no records (an empty data set)";
        Assert.Equal(expected, Error(() => DataFile.Read(dir[name])));
        Assert.Equal(expected, Error(() => TrainingRecord.Load(dir[name])));
        Assert.Equal(expected, Error(() => PromptSet.Load(dir[name])));
        Assert.Equal(expected, Error(() => TaskExample.Load(dir[name])));
        Assert.Equal(expected, Error(() => SafetyEvaluation.LoadResponses(dir[name])));
        Assert.Equal(expected, Error(() => Perplexity.LoadTexts(dir[name])));
        Assert.Equal(expected, Error(() => DataFile.Parse(text, name)));
    }

    private static string Error(Action action) => Assert.Throws<IrrException>(action).Message;
}
