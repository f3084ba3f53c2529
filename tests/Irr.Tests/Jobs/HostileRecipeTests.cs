using System.Text;
using Irr.Jobs;
using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Jobs;

/// <summary>
/// Issue 24, recipes: YAML that would make more than a recipe needs (a billion laughs, 100,000 nested brackets, an alias
/// inside its own anchor, a huge file) ends in one error naming the recipe and the line, and keys are echoed escaped.
/// </summary>
public class HostileRecipeTests
{
    private static string Error(string text) => Assert.Throws<IrrException>(() => Recipe.Parse(text, "r.yaml")).Message;

    // The classic billion laughs: 9 "lol"s, then 8 levels each of 9 aliases of the level before: 9^9 nodes once expanded.
    private static string Laughs(string use)
    {
        var b = new StringBuilder("output: out\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (char c = 'b', prev = 'a'; c <= 'i'; prev = c, c++)
            b.Append(c).Append(": &").Append(c).Append(" [").Append(string.Join(", ", Enumerable.Repeat("*" + prev, 9))).Append("]\n");
        return b.Append(use).ToString();
    }

    [Fact]
    public void ABillionLaughsIsRefusedAtTheLineWhereItsExpansionPassesTheLimit()
    {
        // Counted by hand: line 1 makes 3 nodes, line 2 (a) 1 + 10, line 3 (b) 1 + (1 + 9·10 = 91), line 4 (c) 1 + 820,
        // line 5 (d) 1 + 7,381, line 6 (e) 1 + 66,430: 74,740 in all; line 7 (f) passes 100,000 at its first alias of e.
        const string message = "r.yaml line 7: the number of YAML nodes (aliases counted as what they repeat) exceeds the limit of 100,000 (raise it with IRR_MAX_RECIPE_NODES=…)";
        Assert.Equal(message, Error(Laughs("? *i\n: x\nsteps: []\n")));
        Assert.Equal(message, Error(Laughs("steps:\n  - fisher: {*i : x}\n")));
    }

    [Fact]
    public void DeepNestingIsRefusedAtItsLine()
    {
        const string message = "the YAML nesting depth (aliases counted as what they repeat) exceeds the limit of 64 (raise it with IRR_MAX_RECIPE_DEPTH=…)";
        Assert.Equal($"r.yaml line 3: {message}", Error("output: out\nsteps:\n  - fisher: " + new string('[', 100_000) + new string(']', 100_000) + "\n"));
        Assert.Equal($"r.yaml line 2: {message}", Error("output: out\nsteps: " + string.Concat(Enumerable.Repeat("{a: ", 100_000)) + "1" + new string('}', 100_000) + "\n"));
        // Block style: "-" 100 levels deep; the root mapping is level 1, the sequence of level k opens on line k + 1.
        string block = "output: out\nsteps:\n" + string.Concat(Enumerable.Range(0, 100).Select(i => new string(' ', 2 * i) + "-\n"));
        Assert.Equal($"r.yaml line 66: {message}", Error(block));
        // Depth through aliases: an anchor 40 deep used 30 deep.
        string nested = new string('[', 40) + new string(']', 40);
        Assert.Equal($"r.yaml line 3: {message}", Error($"output: out\nx: &deep {nested}\nsteps: {new string('[', 30)}*deep{new string(']', 30)}\n"));
    }

    [Fact]
    public void AnAliasInsideItsOwnAnchorOrBeforeItIsRefused()
    {
        Assert.Equal("r.yaml line 2: the alias *a is inside its own anchor &a", Error("output: out\nsteps: &a [*a]\n"));
        Assert.Equal("r.yaml line 2: the alias *b refers to no anchor before it", Error("output: out\nsteps: [*b]\nx: &b 1\n"));
    }

    [Fact]
    public void AnchorsAndAliasesARecipeUsesStillWork()
    {
        var recipe = Recipe.Parse("output: out\nsteps:\n  - fisher: &f {model: m, data: d.jsonl}\n  - fisher: *f\n", "r.yaml");
        Assert.Equal(["fisher", "fisher-2"], recipe.Steps.Select(s => s.Id));
        Assert.Equal("d.jsonl", recipe.Steps[1].Find("data")!.Values.Single());
    }

    [Fact]
    public void KeysAreEchoedWithTheirControlCharactersEscaped()
    {
        Assert.Equal("r.yaml line 1: unknown key 'out\\x1b[31mput\\n' (a recipe has output and steps)",
            Error("\"out\\e[31mput\\n\": x\nsteps: [fisher: {}]\n"));
        Assert.Equal("r.yaml line 3: fisher: bell\\x07 must be a value or a list of values", Error("output: out\nsteps:\n  - fisher: {\"bell\\a\": {a: 1}}\n"));
    }

    [Fact]
    public void AFileLargerThanTheLimitOrNotUtf8IsRefusedBeforeParsing()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["big.yaml"], "output: out\n#" + new string('x', 1 << 20) + "\nsteps: []\n");
        Assert.Equal($"{dir["big.yaml"]}: the recipe's size in bytes exceeds the limit of 1,048,576 (raise it with IRR_MAX_RECIPE_BYTES=…)",
            Assert.Throws<IrrException>(() => Recipe.Load(dir["big.yaml"])).Message);
        // Python's strict codec: b"steps: \xff" fails at position 7 (0-based) of its line.
        File.WriteAllBytes(dir["bad.yaml"], [.. "output: out\nsteps: "u8, 0xff, (byte)'\n']);
        Assert.Equal($"{dir["bad.yaml"]} line 2: not valid UTF-8 (byte 0xff at column 8)", Assert.Throws<IrrException>(() => Recipe.Load(dir["bad.yaml"])).Message);
    }

    [Fact]
    public void IrrRunEndsTheBombsInOneErrorWithinTheProcessLimits()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["laughs.yaml"], Laughs("? *i\n: x\nsteps: []\n"));
        File.WriteAllText(dir["deep.yaml"], "output: out\nsteps:\n  - fisher: " + new string('[', 100_000) + new string(']', 100_000) + "\n");
        IrrProcess.AssertOneLineError(IrrProcess.Run(["run", dir["laughs.yaml"]]), "laughs.yaml line 7", "IRR_MAX_RECIPE_NODES");
        IrrProcess.AssertOneLineError(IrrProcess.Run(["run", dir["deep.yaml"]]), "deep.yaml line 3", "IRR_MAX_RECIPE_DEPTH");
        Assert.False(Directory.Exists(dir["out"]));
    }
}
