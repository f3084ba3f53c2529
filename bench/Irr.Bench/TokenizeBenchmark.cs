using System.Diagnostics;
using System.Text;
using Irr.Text;

namespace Irr.Bench;

/// <summary>
/// Encoding throughput of <see cref="Tokenizer"/> on one thread:
///   tokenize [--tokenizer PATH] [--size MB] [--reps R]  ->  tokenize bytes=N mbps=X
/// The text is mixed English and code: lines of this repository's own .md and .cs files in a seeded
/// random order, with one word in ten replaced by a random made-up word (so the word cache does not
/// see only known words). It is encoded line by line, as records are. The default tokenizer is the
/// Llama-2/TinyLlama tokenizer.json of tests/fixtures (32000 tokens, 61249 merges).
/// </summary>
internal static class TokenizeBenchmark
{
    public static int Run(ReadOnlySpan<string> args)
    {
        string root = FindRepoRoot();
        string path = Path.Combine(root, "tests", "fixtures", "tokenizers", "tinyllama-1.1b-chat-v1.0", "tokenizer.json");
        int megabytes = 10, reps = 5;
        for (int i = 0; i < args.Length; i++)
        {
            string name = args[i];
            string value = i + 1 < args.Length ? args[++i] : throw new ArgumentException($"option {name} needs a value");
            switch (name)
            {
                case "--tokenizer": path = value; break;
                case "--size": megabytes = int.TryParse(value, out int mb) && mb > 0 ? mb : throw new ArgumentException("--size must be a positive integer (MB)"); break;
                case "--reps": reps = int.TryParse(value, out int r) && r > 0 ? r : throw new ArgumentException("--reps must be a positive integer"); break;
                default: throw new ArgumentException($"unknown option '{name}'");
            }
        }
        var sw = Stopwatch.StartNew();
        var tokenizer = Tokenizer.Load(path);
        Console.WriteLine($"loaded {path} in {sw.Elapsed.TotalSeconds:F2} s");
        var lines = MixedText(root, megabytes * 1_000_000);
        long bytes = lines.Sum(l => (long)Encoding.UTF8.GetByteCount(l));
        long tokens = 0;
        double best = double.MaxValue;
        for (int r = 0; r < reps; r++)
        {
            // A fresh tokenizer each repetition, so that its word cache starts empty every time.
            if (r > 0) tokenizer = Tokenizer.Load(path);
            sw.Restart();
            tokens = 0;
            foreach (var line in lines) tokens += tokenizer.Encode(line).Length;
            double seconds = sw.Elapsed.TotalSeconds;
            best = Math.Min(best, seconds);
            Console.WriteLine($"rep {r + 1}: {seconds:F3} s, {bytes / seconds / 1e6:F1} MB/s");
        }
        Console.WriteLine($"{lines.Count} lines, {bytes} bytes, {tokens} tokens ({(double)bytes / tokens:F2} bytes/token)");
        Console.WriteLine($"tokenize bytes={bytes} mbps={bytes / best / 1e6:F1}");
        return 0;
    }

    private static List<string> MixedText(string root, long targetBytes)
    {
        var source = Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories)
            .Concat(Directory.EnumerateFiles(Path.Combine(root, "docs"), "*.md", SearchOption.AllDirectories))
            .Append(Path.Combine(root, "README.md"))
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}"))
            .Order(StringComparer.Ordinal)
            .SelectMany(File.ReadLines)
            .Where(l => l.Length > 0)
            .ToArray();
        var rng = new Random(4242);
        var lines = new List<string>();
        long total = 0;
        var sb = new StringBuilder();
        while (total < targetBytes)
        {
            string line = source[rng.Next(source.Length)];
            sb.Clear();
            foreach (var word in line.Split(' '))
            {
                if (sb.Length > 0) sb.Append(' ');
                sb.Append(word.Length > 0 && rng.Next(10) == 0 ? MadeUpWord(rng) : word);
            }
            string mixed = sb.ToString();
            lines.Add(mixed);
            total += Encoding.UTF8.GetByteCount(mixed);
        }
        return lines;
    }

    private static string MadeUpWord(Random rng)
    {
        const string consonants = "bcdfghjklmnpqrstvwxz", vowels = "aeiouy";
        var sb = new StringBuilder();
        int syllables = rng.Next(1, 5);
        for (int i = 0; i < syllables; i++) sb.Append(consonants[rng.Next(consonants.Length)]).Append(vowels[rng.Next(vowels.Length)]);
        if (rng.Next(4) == 0) sb.Append(rng.Next(100));
        return sb.ToString();
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Irr.slnx"))) return dir.FullName;
        throw new ArgumentException("run the benchmark from inside the repository");
    }
}
