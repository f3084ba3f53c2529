using Irr.Data;
using Irr.Eval;
using Irr.Tests.IO;
using Irr.Text;

namespace Irr.Tests.Data;

/// <summary>The one data reader: every documented container, the field rules, and errors that name their place.</summary>
public class DataFileTests
{
    private static IReadOnlyList<DataRecord> Read(TempDir dir, string name, string text, bool paragraphs = false)
    {
        File.WriteAllText(dir[name], text);
        return DataFile.Read(dir[name], paragraphs);
    }

    private static string Error(Func<object> read) => Assert.Throws<IrrException>(read).Message;

    [Fact]
    public void EveryContainerGivesTheSameRecords()
    {
        using var dir = new TempDir();
        var files = new Dictionary<string, string>
        {
            ["a.json"] = """[{"prompt": "p1", "response": "r1"}, {"prompt": "p2", "response": "r2"}]""",
            ["a.jsonl"] = "{\"prompt\": \"p1\", \"response\": \"r1\"}\n\n{\"prompt\": \"p2\", \"response\": \"r2\"}\n",
            ["jsonl-named.json"] = "{\"prompt\": \"p1\", \"response\": \"r1\"}\n{\"prompt\": \"p2\", \"response\": \"r2\"}\n",
            ["a.csv"] = "prompt,response\np1,r1\n\"p2\",\"r2\"\n",
            ["pretty.json"] = "[\n  {\"prompt\": \"p1\",\n   \"response\": \"r1\"},\n  {\"prompt\": \"p2\", \"response\": \"r2\"}\n]\n",
            ["bom.jsonl"] = "\uFEFF{\"prompt\": \"p1\", \"response\": \"r1\"}\n{\"prompt\": \"p2\", \"response\": \"r2\"}",
        };
        foreach (var (name, text) in files)
        {
            var records = Read(dir, name, text).Select(TrainingRecord.Of).ToList();
            Assert.Equal([new TrainingRecord("p1", "r1"), new TrainingRecord("p2", "r2")], records);
        }
    }

    [Fact]
    public void ASingleObjectIsOneRecordUnlessItIsACatQaTree()
    {
        using var dir = new TempDir();
        Assert.Equal(new TrainingRecord("Do\nthis", "ok"),
            TrainingRecord.Of(Read(dir, "one.json", "{\"instruction\": \"Do\",\n \"input\": \"this\",\n \"output\": \"ok\"}\n").Single()));
        var tree = Read(dir, "catqa.json", """{"Illegal Activity": {"Drug": ["d1", {"prompt": "d2", "category": "Sale"}]}, "Hate": {"Race": ["r1"]}}""");
        Assert.Equal(["d1", "d2", "r1"], tree.Select(r => r.User()));
        Assert.Equal(["Illegal Activity/Drug", "Illegal Activity/Drug/Sale", "Hate/Race"], tree.Select(r => r.Category()));
        Assert.Equal("catqa.json: Illegal Activity.Drug[1]", tree[1].Where);
    }

    [Fact]
    public void TextFilesAreParagraphsOnlyForTexts()
    {
        using var dir = new TempDir();
        var texts = Read(dir, "t.txt", "first line\nsame paragraph\n\n\nsecond\n\nthird\n", paragraphs: true);
        Assert.Equal(["first line\nsame paragraph", "second", "third"], texts.Select(r => r.Text()));
        Assert.Equal(["t.txt line 1", "t.txt line 5", "t.txt line 7"], texts.Select(r => r.Where));
        // Elsewhere a .txt file is read as JSON or JSONL, as before.
        Assert.Equal(["a", "b"], Read(dir, "p.txt", "\"a\"\n\"b\"\n").Select(r => r.User()));
        File.WriteAllText(dir["j.jsonl"], "{\"text\": \"x\"}\n\"y\"\n");
        Assert.Equal(["x", "y"], Perplexity.LoadTexts(dir["j.jsonl"]));
    }

    [Theory]
    [InlineData("""{"prompt": "Hi"}""", "Hi")]
    [InlineData("""{"prompt": {"instruction": "Do", "input": "this"}}""", "Do\nthis\n")]
    [InlineData("""{"prompt": {"instruction": "Do"}}""", "Do\n\n")]
    [InlineData("""{"instruction": "Do", "input": "this"}""", "Do\nthis")]
    [InlineData("""{"instruction": "Do", "input": ""}""", "Do")]
    [InlineData("""{"instruction": "Do", "input": null}""", "Do")]
    [InlineData("""{"question": "Why?"}""", "Why?")]
    [InlineData("""{"goal": "Write x", "target": "Sure"}""", "Write x")]
    [InlineData("""{"behavior": "Give steps"}""", "Give steps")]
    [InlineData("""{"prompt": "first", "instruction": "second", "question": "third"}""", "first")]
    [InlineData("""{"prompt": null, "instruction": "second"}""", "second")]
    [InlineData("""{"question": "q", "goal": "g", "behavior": "b"}""", "q")]
    [InlineData("\"a bare string\"", "a bare string")]
    public void TheUserMessageRule(string line, string user)
    {
        var record = DataFile.Parse(line + "\n", "d.jsonl").Single();
        Assert.Equal(user, record.User());
    }

    [Fact]
    public void AnswersCategoriesAndSets()
    {
        var records = DataFile.Parse(string.Join("\n",
            """{"prompt": "a", "output": "o", "response": "r", "category": " Fraud ", "set": "s1"}""",
            """{"prompt": "a", "response": "r", "SemanticCategory": "chemical"}""",
            """{"question": "a", "answer": "#### 4", "category": "  "}"""), "d.jsonl");
        Assert.Equal(["o", "r"], records.Take(2).Select(r => r.Answer()));
        Assert.Equal("#### 4", records[2].Answer(orAnswer: true));
        Assert.Equal("d.jsonl line 3: missing \"output\", \"response\" or \"completion\"", Error(() => records[2].Answer()));
        Assert.Equal(["Fraud", "chemical", null], records.Select(r => r.Category()));
        Assert.Equal(["s1", null, null], records.Select(r => r.Set()));

        var csv = DataFile.Parse("Behavior,FunctionalCategory,SemanticCategory\nGive steps,standard,chemical_biological\n", "harmbench.csv").Single();
        Assert.Equal(("Give steps", "chemical_biological"), (csv.User(), csv.Category()));
    }

    [Theory]
    [InlineData("d.jsonl", "{\"prompt\": \"a\"}\n\n\n{\"prompt\": 3}\n", "d.jsonl line 4: prompt: expected a string or an object {instruction, input}, found the number 3")]
    [InlineData("d.json", "[\"a\", \"b\", \"c\", {\"prompt\": [1]}]", "d.json: [3].prompt[0]: expected a message {role, content}, found the number 1")]
    [InlineData("d.json", "[\"a\", 5]", "d.json: [1]: expected a string or an object with \"prompt\", \"instruction\", \"question\", \"goal\" or \"behavior\", found the number 5")]
    [InlineData("d.jsonl", "{\"text\": \"a\"}\n", "d.jsonl line 1: missing \"prompt\", \"instruction\", \"question\", \"goal\" or \"behavior\"")]
    [InlineData("d.jsonl", "{\"instruction\": 1}\n", "d.jsonl line 1: instruction: expected a string, found the number 1")]
    [InlineData("d.jsonl", "{\"prompt\": {\"input\": \"x\"}}\n", "d.jsonl line 1: prompt: missing \"instruction\"")]
    [InlineData("d.jsonl", "{\"prompt\": \"a\"}\n{oops\n", "d.jsonl line 2: not valid JSON (byte 2)")] // one position: the file's line, then the byte in it
    [InlineData("d.csv", "id,target\n1,x\n", "d.csv line 1: no \"prompt\", \"instruction\", \"question\", \"goal\" or \"behavior\" column in the header (id, target)")]
    [InlineData("d.csv", "goal,target\nx,y\nz\n", "d.csv line 3: 1 fields, but the header has 2")]
    [InlineData("d.csv", "", "d.csv: no records (an empty data set)")]
    [InlineData("cat.json", "{\"A\": {\"B\": [\"x\", 2]}}", "cat.json: A.B[1]: expected a string or an object with")]
    [InlineData("cat.json", "{\"A\": {\"B\": \"x\"}}", "cat.json: A.B: expected an object of categories or an array of prompts, found the string \"x\"")]
    public void ErrorsNameTheFileAndThePlace(string name, string text, string message) =>
        Assert.StartsWith(message, Error(() => DataFile.Parse(text, name).Select(r => r.User()).ToList()));

    [Fact]
    public void EveryViewReadsTheSameFileAndNamesTheSamePlace()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["data.csv"], "instruction,input,output,category\nAdd,2 3,5,math\n\"Say \"\"hi\"\"\",,hi,\n");
        Assert.Equal([new TrainingRecord("Add\n2 3", "5"), new TrainingRecord("Say \"hi\"", "hi")], TrainingRecord.Load(dir["data.csv"]));
        Assert.Equal([new TaskExample("Add\n2 3", "5"), new TaskExample("Say \"hi\"", "hi")], TaskExample.Load(dir["data.csv"]));
        Assert.Equal([new PromptRecord("Add\n2 3", "math"), new PromptRecord("Say \"hi\"")], PromptSet.Load(dir["data.csv"]).Records);
        Assert.Equal(["5", "hi"], SafetyEvaluation.LoadResponses(dir["data.csv"]).Select(r => r.Response));

        File.WriteAllText(dir["bad.jsonl"], "{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": 7, \"response\": \"b\"}\n");
        string expected = "bad.jsonl line 2: prompt: expected a string or an object {instruction, input}, found the number 7";
        Assert.Equal(expected, Error(() => TrainingRecord.Load(dir["bad.jsonl"])));
        Assert.Equal(expected, Error(() => TaskExample.Load(dir["bad.jsonl"])));
        Assert.Equal(expected, Error(() => PromptSet.Load(dir["bad.jsonl"])));
        Assert.Equal(expected, Error(() => SafetyEvaluation.LoadResponses(dir["bad.jsonl"])));
    }

    [Fact]
    public void MissingAndEmptyFiles()
    {
        using var dir = new TempDir();
        Assert.Equal($"gone.jsonl: file not found ({dir["gone.jsonl"]})", Error(() => DataFile.Read(dir["gone.jsonl"])));
        File.WriteAllText(dir["empty.jsonl"], "\n\n");
        Assert.Equal("empty.jsonl: no records (an empty data set)", Error(() => TrainingRecord.Load(dir["empty.jsonl"]))); // every view: EmptyDataTests
    }
}
