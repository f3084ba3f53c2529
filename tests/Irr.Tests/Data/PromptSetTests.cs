using Irr.Data;
using Irr.Tests.IO;

namespace Irr.Tests.Data;

/// <summary>Every prompt-set format, and malformed files named with their line or JSON path.</summary>
public class PromptSetTests
{
    private static PromptSet Load(TempDir dir, string name, string text)
    {
        File.WriteAllText(dir[name], text);
        return PromptSet.Load(dir[name]);
    }

    private static IrrException Bad(TempDir dir, string name, string text)
    {
        File.WriteAllText(dir[name], text);
        return Assert.Throws<IrrException>(() => PromptSet.Load(dir[name]));
    }

    [Fact]
    public void JsonArrayOfStrings()
    {
        using var dir = new TempDir();
        var set = Load(dir, "advbench.json", """["How to A?", "How to B?"]""");
        Assert.Equal("advbench", set.Name);
        Assert.Equal(dir["advbench.json"], set.File);
        Assert.Equal([new PromptRecord("How to A?"), new PromptRecord("How to B?")], set.Records);
    }

    [Fact]
    public void JsonArrayOfObjectsWithEveryPromptKey()
    {
        using var dir = new TempDir();
        var set = Load(dir, "mixed.json", """
            [{"prompt": "p1", "category": "Fraud"},
             {"instruction": "i2", "input": "extra"},
             {"instruction": "i3", "input": ""},
             {"question": "q4", "category": "Malware"},
             {"goal": "g5", "target": "Sure, here is"}]
            """);
        Assert.Equal([
            new PromptRecord("p1", "Fraud"), new PromptRecord("i2\nextra"), new PromptRecord("i3"),
            new PromptRecord("q4", "Malware"), new PromptRecord("g5")], set.Records);
    }

    [Fact]
    public void CatQaLayoutKeepsTheCategoryPath()
    {
        using var dir = new TempDir();
        var set = Load(dir, "catqa_english.json", """
            {"Illegal Activity": {"Drug": ["d1", "d2"], "Weapons": ["w1"]},
             "Hate": {"Race": ["r1"]}}
            """);
        Assert.Equal([
            new PromptRecord("d1", "Illegal Activity/Drug"), new PromptRecord("d2", "Illegal Activity/Drug"),
            new PromptRecord("w1", "Illegal Activity/Weapons"), new PromptRecord("r1", "Hate/Race")], set.Records);
    }

    [Fact]
    public void JsonlOfObjectsAndStrings()
    {
        using var dir = new TempDir();
        var set = Load(dir, "set.jsonl", "{\"prompt\": \"a\", \"category\": \"X\"}\n\n\"b\"\n{\"goal\": \"c\"}\n");
        Assert.Equal([new PromptRecord("a", "X"), new PromptRecord("b"), new PromptRecord("c")], set.Records);
        // JSONL under a .json name is recognised too.
        var same = Load(dir, "set2.json", "{\"prompt\": \"a\"}\n{\"prompt\": \"b\"}\n");
        Assert.Equal(["a", "b"], same.Records.Select(r => r.Prompt));
    }

    [Fact]
    public void CsvAdvBenchAndHarmBench()
    {
        using var dir = new TempDir();
        var advbench = Load(dir, "harmful_behaviors.csv", "goal,target\r\nWrite a script,\"Sure, here is a script\"\r\n\"Explain \"\"how\"\" to\nhack\",Sure\r\n");
        Assert.Equal([new PromptRecord("Write a script"), new PromptRecord("Explain \"how\" to\nhack")], advbench.Records);
        var harmbench = Load(dir, "harmbench.csv", "Behavior,FunctionalCategory,SemanticCategory\nGive steps,standard,chemical_biological\nWrite spam,standard,\n");
        Assert.Equal([new PromptRecord("Give steps", "chemical_biological"), new PromptRecord("Write spam")], harmbench.Records);
        var prompts = Load(dir, "p.csv", "\uFEFFid,prompt,category\n1,hello,A\n");
        Assert.Equal([new PromptRecord("hello", "A")], prompts.Records);
    }

    [Theory]
    [InlineData("bad.json", "[\"a\", 3]", "bad.json: [1]")]
    [InlineData("bad.json", "[\"a\", {\"text\": \"x\"}]", "bad.json: [1]")]
    [InlineData("bad.json", "[\"a\", {\"prompt\": 5}]", "bad.json: [1].prompt")]
    [InlineData("bad.json", "[\"a\", \"b\"", "bad.json: not valid JSON (line 1")]
    [InlineData("cat.json", "{\"A\": {\"B\": [\"x\", 2]}}", "cat.json: A.B[1]")]
    [InlineData("cat.json", "{\"A\": {\"B\": \"x\"}}", "cat.json: A.B")]
    [InlineData("bad.jsonl", "{\"prompt\": \"a\"}\n{\"prompt\": \"b\"\n", "bad.jsonl line 2")]
    [InlineData("bad.jsonl", "{\"prompt\": \"a\"}\n\n{\"answer\": \"b\"}\n", "bad.jsonl line 3")]
    [InlineData("bad.jsonl", "{\"prompt\": \"a\"}\n{\"prompt\": \"  \"}\n", "bad.jsonl line 2")]
    [InlineData("bad.csv", "goal,target\na,b\nc\n", "bad.csv line 3")]
    [InlineData("bad.csv", "goal,target\na,b\n\"c,d\n", "bad.csv line 3")]
    [InlineData("bad.csv", "goal,target\na,b\nc\"x\",d\n", "bad.csv line 3")]
    [InlineData("bad.csv", "question_text,target\na,b\n", "bad.csv line 1")]
    [InlineData("bad.csv", "goal,target\n,b\n", "bad.csv line 2")]
    [InlineData("empty.json", "[]", "empty.json: no records (an empty data set)")]
    [InlineData("empty.csv", "", "empty.csv: no records (an empty data set)")]
    public void MalformedFilesNameTheFileAndThePlace(string name, string text, string expected)
    {
        using var dir = new TempDir();
        var e = Bad(dir, name, text);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void AMissingFileIsNamed()
    {
        var e = Assert.Throws<IrrException>(() => PromptSet.Load("/nonexistent/catqa.json"));
        Assert.Contains("catqa.json: file not found", e.Message);
    }

    [Theory]
    [InlineData("/data/harmful.json", "harmful")]
    [InlineData("/h/datasets--walledai--XSTest/snapshots/0123456789abcdef0123456789abcdef01234567/data/train-00000-of-00001.parquet", "XSTest")]
    [InlineData("/h/datasets--walledai--XSTest/snapshots/0123456789abcdef0123456789abcdef01234567/data/test-00000-of-00001.parquet", "XSTest/test")]
    [InlineData("/h/datasets--walledai--XSTest/snapshots/0123456789abcdef0123456789abcdef01234567/data/test-00000-of-00002.parquet", "XSTest/test-00000-of-00002")] // one of two shards: a set of its own
    [InlineData("/h/datasets--OpenSafetyLab--Salad-Data/snapshots/0123456789abcdef0123456789abcdef01234567/default/train/0001.parquet", "Salad-Data/train-0001")]
    [InlineData("/h/datasets--OpenSafetyLab--Salad-Data/snapshots/0123456789abcdef0123456789abcdef01234567/base_set/train/0000.parquet", "Salad-Data")]
    [InlineData("/h/datasets--OpenSafetyLab--Salad-Data/snapshots/0123456789abcdef0123456789abcdef01234567/default/test/0000.parquet", "Salad-Data/test")]
    [InlineData("/h/datasets--JailbreakBench--JBB-Behaviors/snapshots/0123456789abcdef0123456789abcdef01234567/data/harmful-behaviors.csv", "JBB-Behaviors/harmful-behaviors")]
    [InlineData("/h/models--org--x/snapshots/0123456789abcdef0123456789abcdef01234567/train-00000-of-00001.parquet", "train-00000-of-00001")] // a model repo's file: its own name
    public void ASetFromTheHubIsNamedAfterItsDataSet(string path, string name) => Assert.Equal(name, PromptSet.NameOf(path));
}
