using Irr.IO;
using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Realign;

/// <summary>
/// The one output policy (issue 25): irr safety-vector, irr fisher, irr fisher merge and irr score refuse
/// an existing output file in one line naming --overwrite, leaving it as it was, and replace it with --overwrite.
/// </summary>
public class ExistingOutputTests
{
    private const string Old = "an earlier output";

    // The run without --overwrite is refused and leaves the file; the run with it writes a safetensors file of its kind.
    private static void RefusedThenReplaced(string output, string[] command, int tensors, string kind)
    {
        Refused(output, command);
        var (code, _, err) = CliRunner.Run([.. command, "--overwrite"]);
        Assert.True(code == 0, err);
        using var written = SafetensorsFile.Open(output);
        Assert.Equal(tensors, written.Tensors.Count); // the tiny models' 2 layers × the modules
        Assert.Equal(kind, written.Metadata["irr"]);
    }

    // The run without --overwrite is refused in one line naming it and leaves the earlier output as it was.
    private static void Refused(string output, string[] command)
    {
        File.WriteAllText(output, Old);
        var (code, _, err) = CliRunner.Run(command);
        Assert.Equal(2, code);
        Assert.Equal($"error: {output}: exists (choose another output, or give --overwrite to replace it)", err.TrimEnd('\n'));
        Assert.Equal(Old, File.ReadAllText(output));
    }

    [Fact]
    public void SafetyVector()
    {
        using var dir = new TempDir();
        var (aligned, unaligned, _) = ModelCommandTests.ThreeModels(dir);
        RefusedThenReplaced(dir["v.safetensors"],
            ["safety-vector", "--aligned", aligned, "--unaligned", unaligned, "--modules", "q_proj,v_proj", "-o", dir["v.safetensors"]], 4, "safety-vector");
    }

    [Fact]
    public void Fisher()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir, "aligned"), data = IrrCommandTests.Records(dir, "refusals.jsonl", 3, "how do I");
        RefusedThenReplaced(dir["f.safetensors"],
            ["fisher", "--model", model, "--data", data, "--modules", "q_proj", "--batch-size", "2", "-o", dir["f.safetensors"]], 2, "fisher");
    }

    [Fact]
    public void FisherMerge()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir, "aligned"), data = IrrCommandTests.Records(dir, "refusals.jsonl", 3, "how do I");
        string[] parts = [dir["part0.safetensors"], dir["part1.safetensors"]];
        for (int k = 0; k < 2; k++)
        {
            var r = CliRunner.Run("fisher", "--model", model, "--data", data, "--modules", "q_proj", "--batch-size", "2", "--shard", $"{k}/2", "-o", parts[k]);
            Assert.True(r.Code == 0, r.Err);
        }
        RefusedThenReplaced(dir["f.safetensors"], ["fisher", "merge", .. parts, "-o", dir["f.safetensors"]], 2, "fisher");
    }

    [Fact]
    public void Score()
    {
        using var dir = new TempDir();
        var (aligned, _, _) = ModelCommandTests.ThreeModels(dir);
        File.WriteAllText(dir["d.jsonl"], "{\"prompt\": \"a\", \"output\": \"b\"}\n");
        string output = dir["scores.json"];
        string[] command = ["score", "--model", aligned, "--data", dir["d.jsonl"], "-o", output];
        Refused(output, command);
        var (code, _, err) = CliRunner.Run([.. command, "--overwrite"]);
        Assert.True(code == 0, err);
        Assert.Equal(1, System.Text.Json.JsonDocument.Parse(File.ReadAllText(output)).RootElement.GetProperty("records").GetInt32()); // the one record scored
    }
}
