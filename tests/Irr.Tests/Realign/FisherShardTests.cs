using Irr.IO;
using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Realign;

/// <summary>irr fisher --shard K/N and irr fisher merge: the merged parts equal the unsharded Fisher, and bad sets of parts are refused.</summary>
public class FisherShardTests
{
    private static void Ok((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, r.Err);

    private static (string Model, string Data) World(TempDir dir)
    {
        string model = ModelCommandTests.ChatModel(dir, "aligned");
        // 7 records in batches of 2: 4 batches, so 3 shards hold 2, 1 and 1 batches.
        string data = IrrCommandTests.Records(dir, "refusals.jsonl", 7, "how do I");
        return (model, data);
    }

    private static string[] Fisher(string model, string data, string output, params string[] more) =>
        ["fisher", "--model", model, "--data", data, "--modules", "q_proj,down_proj", "-o", output, .. more.Contains("--batch-size") ? more : [.. more, "--batch-size", "2"]];

    [Fact]
    public void MergedShardsEqualTheUnshardedFisher()
    {
        using var dir = new TempDir();
        var (model, data) = World(dir);
        Ok(CliRunner.Run(Fisher(model, data, dir["full.safetensors"])));
        using var full = SafetensorsFile.Open(dir["full.safetensors"]);
        foreach (int n in new[] { 1, 2, 3 })
        {
            var parts = Enumerable.Range(0, n).Select(k => dir[$"part{k}of{n}.safetensors"]).ToArray();
            for (int k = 0; k < n; k++) Ok(CliRunner.Run(Fisher(model, data, parts[k], "--shard", $"{k}/{n}")));
            string merged = dir[$"merged{n}.safetensors"];
            Ok(CliRunner.Run(["fisher", "merge", .. parts.Reverse(), "-o", merged]));
            using var m = SafetensorsFile.Open(merged);
            Assert.Equal(full.Tensors.Select(t => t.ToString()), m.Tensors.Select(t => t.ToString()));
            Assert.Equal("4", m.Metadata["batches"]);
            foreach (var t in full.Tensors)
            {
                float[] a = full.ReadSingle(t.Name), b = m.ReadSingle(t.Name);
                for (int i = 0; i < a.Length; i++)
                {
                    // One shard adds in the same order as the unsharded run: equal. More shards reorder at most B = 4
                    // float32 additions of non-negative terms: within 4 ulps, i.e. 1e-6 relative.
                    if (n == 1) Assert.Equal(a[i], b[i]);
                    else Assert.True(Math.Abs(a[i] - b[i]) <= 1e-6 * Math.Max(Math.Abs(a[i]), Math.Abs(b[i])) + 1e-30, $"{t.Name}[{i}]: {a[i]} vs {b[i]} (N = {n})");
                }
            }
        }
        // The merged Fisher is what irr realign reads: the same metadata as the unsharded file's (but for nothing).
        using var m3 = SafetensorsFile.Open(dir["merged3.safetensors"]);
        Assert.Equal(full.Metadata.OrderBy(kv => kv.Key), m3.Metadata.OrderBy(kv => kv.Key));
    }

    [Fact]
    public void AShardSaysItsShareAndAnEmptyShardIsWarnedAbout()
    {
        using var dir = new TempDir();
        var (model, data) = World(dir);
        // 4 batches over 3 shards: shard 0 holds batches 0 and 3.
        var r = CliRunner.Run(Fisher(model, data, dir["p0.safetensors"], "--shard", "0/3"));
        Ok(r);
        Assert.Matches($@"shard 0/3: 2 of the 4 batches of 7 records; wrote \d+ partial sums to {System.Text.RegularExpressions.Regex.Escape(dir["p0.safetensors"])} \(combine with irr fisher merge\)", r.Err);
        Assert.DoesNotContain("warning", r.Err);
        // 4 batches over 5 shards: shard 4 has none.
        r = CliRunner.Run(Fisher(model, data, dir["p4.safetensors"], "--shard", "4/5"));
        Ok(r);
        Assert.Contains("warning: shard 4/5 holds no batch: the data makes 4 batches of 2, so only shards 0 to 3 have work; its partial file holds zeros", r.Err);
        Assert.Contains("shard 4/5: 0 of the 4 batches", r.Err);
    }

    [Fact]
    public void BadSetsOfPartsAreRefused()
    {
        using var dir = new TempDir();
        var (model, data) = World(dir);
        string P(string name) => dir[name + ".safetensors"];
        Ok(CliRunner.Run(Fisher(model, data, P("a0"), "--shard", "0/3")));
        Ok(CliRunner.Run(Fisher(model, data, P("a1"), "--shard", "1/3")));
        Ok(CliRunner.Run(Fisher(model, data, P("a2"), "--shard", "2/3")));
        Ok(CliRunner.Run(Fisher(model, data, P("b1"), "--shard", "1/3", "--batch-size", "3")));
        Ok(CliRunner.Run(Fisher(model, data, P("c1"), "--shard", "1/2")));
        Ok(CliRunner.Run(Fisher(model, data, P("full"))));

        void Refused(string expected, params string[] parts)
        {
            var r = CliRunner.Run(["fisher", "merge", .. parts, "-o", P("out")]);
            Assert.Equal(2, r.Code);
            Assert.Equal("error: " + expected, r.Err.TrimEnd('\n'));
            Assert.False(File.Exists(P("out")));
        }
        Refused("fisher merge: shard 2/3 missing", P("a0"), P("a1"));
        Refused($"{P("a1")}: shard 1/3 is given twice (also {P("a1")})", P("a0"), P("a1"), P("a1"), P("a2"));
        Refused($"{P("b1")}: its batch_size (3) differs from {P("a0")}'s (2); the parts of one Fisher come from one model, data and options", P("a0"), P("b1"), P("a2"));
        Refused($"{P("c1")}: is shard 1/2, but {P("a0")} is of 3 shards", P("a0"), P("c1"));
        Refused($"{P("full")}: not a partial Fisher file (irr fisher --shard K/N writes them)", P("full"), P("a0"));

        var bad = CliRunner.Run(Fisher(model, data, P("x"), "--shard", "3/3"));
        Assert.Equal(2, bad.Code);
        Assert.Equal("error: fisher: shard must be K/N with 0 ≤ K < N (e.g. 0/4), not '3/3'", bad.Err.TrimEnd('\n'));
    }
}
