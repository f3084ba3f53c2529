using System.Text;
using System.Text.Json;
using Irr.Data;
using Irr.Tests.Cli;
using Irr.Tests.IO;

namespace Irr.Tests.Data;

/// <summary>
/// Issue 24, data files: every data file is read streamed, one record at a time, within a per-record limit (16 MiB),
/// a record count and a total size; invalid UTF-8 is refused by its line as Python's strict codec refuses it. The big
/// inputs are generated here (a sparse 2 GB line, a 300 MB item written in chunks) and read by irr under the process's
/// own memory and CPU limits (<see cref="IrrProcess"/>).
/// </summary>
public class HostileDataTests
{
    private const int Limit = 16 << 20;
    private const string TooLong = "the record's size in bytes exceeds the limit of 16,777,216 (raise it with IRR_MAX_RECORD_BYTES=…)";

    private static string Error(Action read) => Assert.Throws<IrrException>(read).Message;

    // Each container with a record of Limit + 1 bytes starting on line 3 (counted by hand: two short records first).
    public static TheoryData<string, string> Containers => new()
    {
        { "d.jsonl", "{\"prompt\": \"a\"}\n\n{\"prompt\": \"BIG\"}\n{\"prompt\": \"b\"}\n" },
        { "d.json", "[{\"prompt\": \"a\"},\n\n  {\"prompt\": \"BIG\"}, {\"prompt\": \"b\"}]" },
        { "d.json", "[\"a\",\n\"b\",\n\"BIG\"]" },
        { "catqa.json", "{\"Crime\":\n {\"Drug\": [\"a\",\n \"BIG\"]}}" },
        { "d.csv", "prompt,category\na,x\n\"first line\nBIG\",y\n" },
        { "hexphi.csv", "How do I do a thing?\nAnother question here\nBIG!\n" },
        { "d.txt", "first paragraph\n\nBIG\nmore\n\nlast paragraph\n" },
    };

    [Theory]
    [MemberData(nameof(Containers))]
    public void RecordLongerThanTheLimitIsRefusedByTheLineItStartsOn(string name, string template)
    {
        // Big enough that the record is one byte longer than the limit or more, whatever the JSON/CSV around it.
        string text = template.Replace("BIG", new string('x', Limit));
        Assert.Equal($"{name} line 3: {TooLong}", Error(() => DataFile.Parse(text, name, paragraphs: true)));
    }

    [Fact]
    public void ARecordOfExactlyTheLimitIsRead()
    {
        // {"prompt": "xxx…"} of exactly 16 MiB: 13 bytes around the text.
        string record = "{\"prompt\": \"" + new string('x', Limit - 14) + "\"}";
        Assert.Equal(Limit, Encoding.UTF8.GetByteCount(record));
        Assert.Equal(Limit - 14, DataFile.Parse(record + "\n" + record + "\n", "d.jsonl")[1].User().Length);
        Assert.Equal($"d.jsonl line 2: {TooLong}", Error(() => DataFile.Parse(record + "\n" + record + "x\n", "d.jsonl")));
    }

    [Fact]
    public void OneObjectFileIsOneRecordAndSoWithinTheLimit()
    {
        Assert.Equal($"d.json line 1: {TooLong}", Error(() => DataFile.Parse("{\"prompt\": \"" + new string('x', Limit) + "\"}", "d.json")));
        // Pretty-printed: the record is the object, which starts on line 1.
        Assert.Equal($"d.json line 1: {TooLong}", Error(() => DataFile.Parse("{\n\"prompt\": \"" + new string('x', Limit) + "\"}", "d.json")));
    }

    // Python 3: b.decode("utf-8") raises UnicodeDecodeError at e.start (0-based, in the line), for these bytes:
    // 0x80 at 15 (invalid start byte), 0xc0 at 13 (overlong '/'), 0xed at 12 (a surrogate), 0xf4 at 12 (above U+10FFFF),
    // 0xe2 at 12 (truncated), 0xef at 14 (Latin-1 "naïve").
    public static TheoryData<byte[], int, int> InvalidUtf8 => new()
    {
        { [.. "{\"prompt\": \"caf"u8, 0x80, .. "\"}"u8], 0x80, 16 },
        { [.. "{\"prompt\": \"a"u8, 0xc0, 0xaf, .. "b\"}"u8], 0xc0, 14 },
        { [.. "{\"prompt\": \""u8, 0xed, 0xa0, 0x80, .. "\"}"u8], 0xed, 13 },
        { [.. "{\"prompt\": \""u8, 0xf4, 0x90, 0x80, 0x80, .. "\"}"u8], 0xf4, 13 },
        { [.. "{\"prompt\": \""u8, 0xe2, 0x82, .. "\"}"u8], 0xe2, 13 },
        { [.. "{\"prompt\": \"na"u8, 0xef, .. "ve\"}"u8], 0xef, 15 },
    };

    [Theory]
    [MemberData(nameof(InvalidUtf8))]
    public void InvalidUtf8IsRefusedByItsLineAsPythonDoes(byte[] record, int bad, int column)
    {
        using var dir = new TempDir();
        byte[] good = "{\"prompt\": \"fine\"}\n"u8.ToArray();
        string expected = $"line 2: not valid UTF-8 (byte 0x{bad:x2} at column {column})";
        File.WriteAllBytes(dir["d.jsonl"], [.. good, .. record, (byte)'\n', .. good]);
        Assert.Equal($"d.jsonl {expected}", Error(() => DataFile.Read(dir["d.jsonl"])));
        // A JSON array, the bad item on line 2 (its column counted within the line, after the "  ").
        File.WriteAllBytes(dir["d.json"], [(byte)'[', .. good[..^1], (byte)',', (byte)'\n', .. record, (byte)']']);
        Assert.Equal($"d.json {expected}", Error(() => DataFile.Read(dir["d.json"])));
        // A CSV: the same bytes as a field on line 2.
        File.WriteAllBytes(dir["d.csv"], [.. "prompt\n"u8, .. record[11..], .. "\n"u8]);
        Assert.Equal($"d.csv line 2: not valid UTF-8 (byte 0x{bad:x2} at column {column - 11})", Error(() => DataFile.Read(dir["d.csv"])));
    }

    [Fact]
    public void AnUnpairedSurrogateEscapeIsRefusedByItsLine()
    {
        // Valid JSON (Python reads "\ud800" into a str), but not text: no UTF-8 encodes it.
        const string message = "a string holds an unpaired surrogate escape (\\ud800–\\udfff without its pair), which is not text";
        Assert.Equal($"d.jsonl line 2: {message}", Error(() => DataFile.Parse("\"a\"\n{\"prompt\": \"x\\ud800y\"}\n", "d.jsonl")));
        Assert.Equal($"d.json line 3: {message}", Error(() => DataFile.Parse("[\"a\",\n\"b\",\n{\"prompt\": \"\\uDFFF\"}]", "d.json")));
        Assert.Equal($"c.json line 2: {message}", Error(() => DataFile.Parse("{\"A\": {\"B\":\n [\"\\udc00\"]}}", "c.json")));
        // A pair is text.
        Assert.Equal("😀", DataFile.Parse("[\"\\ud83d\\ude00\"]", "d.json").Single().User());
    }

    [Fact]
    public void ControlCharactersOfTheFileAreEscapedInErrors()
    {
        Assert.Equal("d.jsonl line 1: messages: expected a list of messages, found the string \"a\\x1b[31m\"",
            Error(() => DataFile.Parse("{\"messages\": \"a\\u001b[31m\"}\n", "d.jsonl")[0].User()));
        Assert.Equal("c.json: Cat\\nerror: x[0]: expected a string or an object with \"prompt\", \"instruction\", \"question\", \"goal\" or \"behavior\", found the number 3",
            Error(() => DataFile.Parse("{\"Cat\\nerror: x\": [3]}", "c.json")[0].User()));
        Assert.Equal("d.csv line 1: no \"prompt\", \"instruction\", \"question\", \"goal\" or \"behavior\" column in the header (pro\\x07mpt, x)",
            Error(() => DataFile.Parse("pro\u0007mpt,x\na,b\n", "d.csv")[0].User()));
    }

    [Fact]
    public void StreamedReadingGivesWhatAWholeDocumentParseGives()
    {
        // Seeded records of every kind of text, pretty-printed and compact, across many 64 KB buffers; the reference is
        // System.Text.Json's parse of the whole document.
        var random = new Random(24);
        string[] alphabet = ["a", "é", "中", "😀", "\\n", "\\\"", "\\u00e9", " ", ",", "[", "}", "\\ud83d\\ude00"];
        var items = Enumerable.Range(0, 3000).Select(i =>
            "{\"prompt\": \"" + string.Concat(Enumerable.Range(0, random.Next(1, 200)).Select(_ => alphabet[random.Next(alphabet.Length)])) + "\"}").ToList();
        string array = "\uFEFF[\r\n  " + string.Join(",\r\n  ", items) + "\r\n]\r\n";
        using var doc = JsonDocument.Parse(array[1..]);
        var expected = doc.RootElement.EnumerateArray().Select(e => e.GetProperty("prompt").GetString()).ToList();
        Assert.Equal(expected, DataFile.Parse(array, "d.json").Select(r => r.User()));
        Assert.Equal(expected, DataFile.Parse("\uFEFF" + string.Join("\r\n", items) + "\r\n", "d.jsonl").Select(r => r.User()));
        Assert.Equal(expected, DataFile.Parse("{\"Set\": [" + string.Join(",\n", items) + "]}", "catqa.json").Select(r => r.User()));
    }

    [Fact]
    public void AMinifiedFileOnOneLineLongerThanTheLimitIsReadByItsItems()
    {
        // json.dump without indent writes one line: 20 MB of small prompts is no 20 MB record.
        var prompts = Enumerable.Range(0, 2_000).Select(i => $"prompt number {i:D4} " + new string('x', 10_000)).ToList();
        string items = string.Join(",", prompts.Select(p => $"{{\"prompt\": \"{p}\"}}"));
        Assert.True(items.Length > Limit);
        Assert.Equal(prompts, DataFile.Parse("[" + items + "]", "d.json").Select(r => r.User()));
        Assert.Equal(prompts, DataFile.Parse("{\"Set\": {\"Sub\": [" + items + "]}}\n", "catqa.json").Select(r => r.User()));
    }

    [Fact]
    public void ASyntaxErrorDeepInABigArrayNamesItsLine()
    {
        string text = "[\n" + string.Concat(Enumerable.Repeat("{\"prompt\": \"a prompt of some length to cross buffers\"},\n", 40_000)) + "{\"prompt\": \"x\",}\n]";
        Assert.StartsWith("d.json: not valid JSON (line 40002, byte 16):", Error(() => DataFile.Parse(text, "d.json")));
    }

    // A file of head, 2 GB of a hole (read as NUL bytes, taking no disk) and tail.
    private static string Sparse(string path, ReadOnlySpan<byte> head, ReadOnlySpan<byte> tail)
    {
        using var f = File.Create(path);
        f.Write(head);
        f.Seek(2L << 30, SeekOrigin.Begin);
        f.Write(tail);
        return path;
    }

    [Fact]
    public void HugeDataFilesEndInOneErrorInBoundedMemoryAndTime()
    {
        using var dir = new TempDir();
        string model = ModelCommandTests.ChatModel(dir);
        string Run(string file, IReadOnlyDictionary<string, string>? env = null, params string[] mentions) =>
            IrrProcess.AssertOneLineError(IrrProcess.Run(["eval", "safety", "--model", model, "--prompts", file, "--judge", "keyword", "-o", dir["out"]], env: env),
                [Path.GetFileName(file), .. mentions]);

        // A JSONL whose second line is 2 GB long: a sparse file (the gap reads as NUL bytes and takes no disk).
        string jsonl = Sparse(dir["huge.jsonl"], "{\"prompt\": \"a\"}\n{\"prompt\": \""u8, "\"}\n"u8);
        Assert.Equal($"error: huge.jsonl line 2: {TooLong}", Run(jsonl));
        File.Delete(jsonl);

        // A CSV whose quoted field never closes, over a 2 GB line.
        string csv = Sparse(dir["huge.csv"], "prompt\n\"an open quote\n"u8, "\n"u8);
        Assert.Equal($"error: huge.csv line 2: {TooLong}", Run(csv));
        File.Delete(csv);

        // A JSON array whose second item is a 300 MB string, written in 1 MB chunks.
        string json = dir["huge.json"];
        using (var f = File.Create(json))
        {
            f.Write("[\"a\",\n\""u8);
            byte[] chunk = Encoding.ASCII.GetBytes(new string('x', 1 << 20));
            for (int i = 0; i < 300; i++) f.Write(chunk);
            f.Write("\"]"u8);
        }
        Assert.Equal($"error: huge.json line 2: {TooLong}", Run(json));
        File.Delete(json);

        // Many small records: the count and the total size limits, lowered for the child alone.
        string many = dir["many.jsonl"];
        File.WriteAllText(many, string.Concat(Enumerable.Repeat("{\"prompt\": \"0123456789\"}\n", 5)));
        Assert.Equal("error: many.jsonl: the number of records exceeds the limit of 4 (raise it with IRR_MAX_RECORDS=…)",
            Run(many, new Dictionary<string, string> { ["IRR_MAX_RECORDS"] = "4" }));
        // A record takes its bytes and 16 a JSON value (as many as its separators and one): 24 + 2·16 = 56 each, so the
        // second passes 100; and a record of 100 zeros, 7 + 199 + 2 = 208 bytes with 99 commas and a colon, takes
        // 208 + 101·16 = 1,824: one byte more than a limit of 1,823.
        const string memory = "the records' size in memory (bytes, and 16 a value or field) exceeds the limit of";
        Assert.Equal($"error: many.jsonl: {memory} 100 (raise it with IRR_MAX_DATA_BYTES=…)",
            Run(many, new Dictionary<string, string> { ["IRR_MAX_DATA_BYTES"] = "100" }));
        File.WriteAllText(many, "{\"a\": [" + string.Join(",", Enumerable.Repeat("0", 100)) + "]}\n");
        Assert.Equal($"error: many.jsonl: {memory} 1,823 (raise it with IRR_MAX_DATA_BYTES=…)",
            Run(many, new Dictionary<string, string> { ["IRR_MAX_DATA_BYTES"] = "1823" }));
        Assert.Equal("error: many.jsonl line 1: the record's size in bytes exceeds the limit of 20 (raise it with IRR_MAX_RECORD_BYTES=…)",
            Run(many, new Dictionary<string, string> { ["IRR_MAX_RECORD_BYTES"] = "20" }));
        Assert.False(Directory.Exists(dir["out"]));
    }
}

/// <summary>
/// Issue 24, the other files a user brings or irr reads back: attack files and refusal-marker lists are read line by line
/// within the data limits; engine and verdict caches line by line; result and record files (run.json, safety.json,
/// sweep.json, irr-report.json) within IRR_MAX_RESULT_BYTES (64 MiB); all refuse invalid UTF-8 by line.
/// </summary>
public class HostileListFileTests
{
    private const string TooLong = "the record's size in bytes exceeds the limit of 16,777,216 (raise it with IRR_MAX_RECORD_BYTES=…)";

    [Fact]
    public void AttackAndMarkerFilesAreReadLineByLine()
    {
        using var dir = new TempDir();
        string attacks = dir["attacks.jsonl"], markers = dir["markers.txt"];
        File.WriteAllText(attacks, "{\"name\": \"a\", \"template\": \"{prompt}\"}\n# " + new string('x', 16 << 20) + "\n");
        Assert.Equal($"{attacks} line 2: {TooLong}", Assert.Throws<IrrException>(() => Irr.Eval.Attacks.Load(attacks)).Message);
        File.WriteAllBytes(attacks, [.. "# a comment\n{\"name\": \"a\", \"template\": \"x"u8, 0xff, .. "{prompt}\"}\n"u8]);
        Assert.Equal($"{attacks} line 2: not valid UTF-8 (byte 0xff at column 29)", Assert.Throws<IrrException>(() => Irr.Eval.Attacks.Load(attacks)).Message);
        File.WriteAllBytes(markers, [.. "I cannot\n# comment\n\nI won"u8, 0xe2, 0x80, (byte)'\n']);
        Assert.Equal($"{markers} line 4: not valid UTF-8 (byte 0xe2 at column 6)", Assert.Throws<IrrException>(() => Irr.Eval.KeywordJudge.FromFile(markers)).Message);
        File.WriteAllText(markers, "I cannot # a comment\n\n  I won't  \n");
        Assert.Equal(["i cannot", "i won't"], Irr.Eval.KeywordJudge.FromFile(markers).Markers);
    }

    [Fact]
    public void ACacheLineThatIsNotUtf8IsSkippedAndAHugeOneIsAnError()
    {
        using var dir = new TempDir();
        string cache = dir["verdicts.jsonl"];
        File.WriteAllBytes(cache, [.. "{\"key\": \"k1\", \"verdict\": \"safe\"}\n{\"key\": \"k"u8, 0xff, .. "\", \"verdict\": \"safe\"}\n{\"key\": \"k3\", \"verdict\": \"harmful\"}"u8]);
        var verdicts = Irr.Eval.VerdictCache.Open(cache);
        Assert.Equal((2, 1), (verdicts.Count, verdicts.SkippedLines));
        File.WriteAllText(cache, "{\"key\": \"k1\", \"verdict\": \"safe\"}\n{\"key\": \"" + new string('k', 16 << 20) + "\"}\n");
        Assert.Equal($"{cache} line 2: {TooLong}", Assert.Throws<IrrException>(() => Irr.Eval.VerdictCache.Open(cache)).Message);
    }

    [Fact]
    public void AResultFileLargerThanItsLimitOrNotUtf8IsOneError()
    {
        using var dir = new TempDir();
        string run = dir["run.json"];
        using (var f = File.Create(run))
        {
            f.Write("{\"irr_version\": \""u8);
            f.Seek(64L << 20, SeekOrigin.Begin); // a hole: 64 MiB of NUL bytes in all, read but never stored on disk
            f.Write("\"}"u8);
        }
        Assert.Equal($"{run}: the file's size in bytes exceeds the limit of 67,108,864 (raise it with IRR_MAX_RESULT_BYTES=…)",
            Assert.Throws<IrrException>(() => Irr.Jobs.RunLedger.Load(dir.Path)).Message);
        File.WriteAllBytes(run, [.. "{\n  \"irr_version\": \"1"u8, 0xc3, .. "\"}"u8]);
        Assert.Equal($"{run} line 2: not valid UTF-8 (byte 0xc3 at column 20)", Assert.Throws<IrrException>(() => Irr.Jobs.RunLedger.Load(dir.Path)).Message);
        File.WriteAllBytes(dir["sweep.json"], [.. "{\"points\": [\""u8, 0x80, .. "\"]}"u8]);
        Assert.Equal($"{dir["sweep.json"]} line 1: not valid UTF-8 (byte 0x80 at column 14)",
            Assert.Throws<IrrException>(() => Irr.Realign.SweepSelection.ChooseFrom(dir["sweep.json"])).Message);
    }
}

/// <summary>
/// Issue 24, data files: what a data file starts with (after a BOM and JSON's whitespace, RFC 8259 §2: space, tab, LF,
/// CR) picks its container. Leading whitespace is no record, so no record limit stops it: it must be skipped in blocks,
/// as any buffered reader does (at least 4 KiB a read, FileStream's default buffer), not one read a byte — data files
/// are opened unbuffered, and 100 MB of spaces took 100 M reads (35 s, beyond the 30 s of CPU the hidden checks allow).
/// </summary>
public class LeadingWhitespaceTests
{
    private sealed class CountingStream(byte[] bytes) : MemoryStream(bytes, writable: false)
    {
        public int Reads { get; private set; }

        public override int Read(byte[] buffer, int offset, int count) { Reads++; return base.Read(buffer, offset, count); }

        public override int Read(Span<byte> buffer) { Reads++; return base.Read(buffer); }

        public override int ReadByte() { Reads++; return base.ReadByte(); }
    }

    public static TheoryData<byte[], char> Starts => new()
    {
        { ""u8.ToArray(), '\0' },
        { " \t\r\n"u8.ToArray(), '\0' },
        { "\uFEFF"u8.ToArray(), '\0' },
        { "["u8.ToArray(), '[' },
        { "[ "u8.ToArray(), '[' },
        { "\uFEFF \n{\"prompt\": 1}"u8.ToArray(), '{' },
        { "\n\n\"a\"\n"u8.ToArray(), '"' },
        { "\u00A0["u8.ToArray(), (char)0xC2 }, // a no-break space is no JSON whitespace: its first byte is what the file starts with
        { "\f["u8.ToArray(), '\f' },
    };

    [Theory]
    [MemberData(nameof(Starts))]
    public void TheFirstByteAfterABomAndJsonWhitespace(byte[] text, char first) =>
        Assert.Equal(first, DataFile.FirstCharacter(new MemoryStream(text)));

    [Fact]
    public void AMegabyteOfLeadingWhitespaceIsSkippedInBlocks()
    {
        const int size = 1 << 20;
        byte[] text = new byte[size + 1];
        for (int i = 0; i < size; i++) text[i] = (byte)" \t\r\n"[i % 4];
        text[size] = (byte)'[';
        var stream = new CountingStream(text);
        Assert.Equal('[', DataFile.FirstCharacter(stream));
        Assert.InRange(stream.Reads, 1, size / 4096 + 2);

        // And the file still reads: whitespace, then JSONL records.
        using var dir = new TempDir();
        string path = dir["lead.jsonl"];
        File.WriteAllBytes(path, [.. text.AsSpan(0, size), .. "{\"prompt\": \"a\"}\n{\"prompt\": \"b\"}\n"u8]);
        Assert.Equal(["a", "b"], DataFile.Read(path).Select(r => r.String("prompt")));
    }
}
