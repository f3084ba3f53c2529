using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Irr.Jobs;
using Irr.Tests.IO;

namespace Irr.Tests.Jobs;

/// <summary>Content hashes (files, directories, the cache by size and time) and run.json (records, the up-to-date check, saving).</summary>
public class RunLedgerTests
{
    [Fact]
    public void AFilesHashIsTheSha256OfItsBytes()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["a.txt"], "hello");
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData("hello"u8)), ContentHash.Compute(dir["a.txt"]));
    }

    [Fact]
    public void ADirectorysHashCoversItsSortedFileNamesAndContents()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["m/sub"]);
        File.WriteAllText(dir["m/b.json"], "{}");
        File.WriteAllText(dir["m/sub/a.bin"], "xyz");
        File.WriteAllText(dir["m/a.txt"], "");
        // By hand: for each file in ordinal order of its '/'-separated name, the name, a zero byte, the length (8 bytes LE), the bytes.
        var expected = new List<byte>();
        foreach (var (name, content) in new[] { ("a.txt", ""), ("b.json", "{}"), ("sub/a.bin", "xyz") })
        {
            expected.AddRange(Encoding.UTF8.GetBytes(name));
            expected.Add(0);
            var length = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(length, content.Length);
            expected.AddRange(length);
            expected.AddRange(Encoding.UTF8.GetBytes(content));
        }
        string hash = ContentHash.Compute(dir["m"]);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(expected.ToArray())), hash);

        File.Move(dir["m/a.txt"], dir["m/c.txt"]); // a renamed file changes the hash
        Assert.NotEqual(hash, ContentHash.Compute(dir["m"]));
        Assert.Throws<FileNotFoundException>(() => ContentHash.Compute(dir["nothing"]));
    }

    [Fact]
    public void HashesAreCachedByPathSizeAndTime()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["m"]);
        File.WriteAllText(dir["m/w.bin"], "weights");
        var hashes = new ContentHash();
        string first = hashes.Of(dir["m"])!;
        Assert.Equal(first, hashes.Of(dir["m"]));
        Assert.Equal(1, hashes.Computed);
        Assert.Null(hashes.Of(dir["missing"]));

        // A cache loaded from run.json does not hash again while the stamp holds …
        var entries = hashes.EntriesFor([dir["m"], dir["missing"]]);
        var loaded = new ContentHash(entries);
        Assert.Equal(first, loaded.Of(dir["m"]));
        Assert.Equal(0, loaded.Computed);
        // … so a stale entry with the same stamp is believed (that is the point of the cache) …
        var stale = new ContentHash([entries[0] with { Sha256 = "stale" }]);
        Assert.Equal("stale", stale.Of(dir["m"]));
        // … and a change of size or time rehashes.
        File.WriteAllText(dir["m/w.bin"], "weights, retrained");
        Assert.NotEqual(first, loaded.Of(dir["m"]));
        File.SetLastWriteTimeUtc(dir["m/w.bin"], new DateTime(2030, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        Assert.NotEqual("stale", stale.Of(dir["m"]));
        Assert.Equal(2, loaded.Computed + stale.Computed);
    }

    private static StepRecord Record(string id, string output, IDictionary<string, string> inputs, int sparsity = 0) => new()
    {
        Id = id,
        Command = "realign",
        Arguments = ["realign", "--sparsity", sparsity.ToString(System.Globalization.CultureInfo.InvariantCulture)],
        Options = new JsonObject { ["sparsity"] = sparsity, ["modules"] = new JsonArray("q_proj"), ["overwrite"] = false },
        Fingerprint = new JsonObject { ["sparsity"] = sparsity, ["modules"] = new JsonArray("q_proj") }, // what a rerun compares
        Output = output,
        Inputs = new SortedDictionary<string, string>(inputs, StringComparer.Ordinal),
        Started = new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc),
        Seconds = 1.5,
        Status = RunLedger.Done,
    };

    [Fact]
    public void AStepIsUpToDateWhenItsCommandOptionsOutputAndInputHashesAreAsRecorded()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["out/realign"]);
        File.WriteAllText(dir["f.bin"], "fisher");
        var ledger = RunLedger.Load(dir["out"]);
        var inputs = ledger.HashInputs([dir["f.bin"], dir["absent"]]);
        Assert.Equal([dir["f.bin"]], inputs.Keys); // a path that does not exist has no hash
        var record = Record("realign", dir["out/realign"], inputs);
        Assert.False(ledger.IsUpToDate(record)); // never ran
        ledger.Record(record);
        Assert.True(ledger.IsUpToDate(record with { Started = DateTime.UtcNow, Seconds = 0 }));
        Assert.False(ledger.IsUpToDate(Record("realign", dir["out/realign"], inputs, sparsity: 1)));
        Assert.False(ledger.IsUpToDate(record with { Command = "fisher" }));
        Assert.False(ledger.IsUpToDate(record with { Output = dir["out/other"] }));
        Assert.False(ledger.IsUpToDate(Record("realign", dir["out/realign"], new Dictionary<string, string> { [dir["f.bin"]] = "0" })));
        Assert.False(ledger.IsUpToDate(Record("realign", dir["out/realign"], new Dictionary<string, string>())));
        Directory.Delete(dir["out/realign"]);
        Assert.False(ledger.IsUpToDate(record)); // its output is gone
        Directory.CreateDirectory(dir["out/realign"]);
        ledger.Record(record with { Status = RunLedger.Failed });
        Assert.False(ledger.IsUpToDate(record));
        ledger.Record(record);
        ledger.MarkSkipped("realign");
        Assert.Equal(RunLedger.Skipped, ledger.Find("realign")!.Status);
        Assert.True(ledger.IsUpToDate(record));
    }

    [Fact]
    public void RunJsonRoundTripsInRecipeOrderAndKeepsOnlyTheRecipesSteps()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["f.bin"], "fisher");
        File.WriteAllText(dir["g.bin"], "gone");
        var ledger = RunLedger.Load(dir["out"]);
        Assert.Null(ledger.Find("realign"));
        ledger.Record(Record("realign", dir["out/realign"], ledger.HashInputs([dir["f.bin"]])));
        ledger.Record(Record("old", dir["out/old"], ledger.HashInputs([dir["g.bin"]])));
        ledger.Record(Record("fisher", dir["out/fisher"], new Dictionary<string, string>()));
        ledger.Save(dir["recipe.yaml"], ["fisher", "realign"]);

        var json = JsonNode.Parse(File.ReadAllText(dir["out/run.json"]))!;
        Assert.Equal(dir["recipe.yaml"], (string)json["recipe"]!);
        Assert.Equal(["fisher", "realign"], json["steps"]!.AsArray().Select(s => (string)s!["id"]!));
        Assert.Equal([dir["f.bin"]], json["hashes"]!.AsArray().Select(h => (string)h!["path"]!)); // g.bin was only an input of the dropped step
        Assert.Equal("2026-01-02T03:04:05Z", (string)json["steps"]![1]!["started"]!);

        var again = RunLedger.Load(dir["out"]);
        var realign = again.Find("realign")!;
        Assert.Equal(ContentHash.Compute(dir["f.bin"]), realign.Inputs[dir["f.bin"]]);
        Assert.Equal(1.5, realign.Seconds);
        Assert.Equal(["realign", "--sparsity", "0"], realign.Arguments);
        Assert.True(JsonNode.DeepEquals(new JsonObject { ["sparsity"] = 0, ["modules"] = new JsonArray("q_proj"), ["overwrite"] = false }, realign.Options));
        Assert.True(JsonNode.DeepEquals(new JsonObject { ["sparsity"] = 0, ["modules"] = new JsonArray("q_proj") }, realign.Fingerprint));
        Assert.Null(again.Find("old"));
        Assert.Equal(realign.Inputs[dir["f.bin"]], again.Hashes.Of(dir["f.bin"]));
        Assert.Equal(0, again.Hashes.Computed); // from the cache in run.json

        File.WriteAllText(dir["out/run.json"], "{ not json");
        Assert.Contains("run.json: not a valid run.json", Assert.Throws<IrrException>(() => RunLedger.Load(dir["out"])).Message);
    }
}
