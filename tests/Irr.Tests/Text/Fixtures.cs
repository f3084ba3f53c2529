using System.IO.Compression;
using Irr.Text;

namespace Irr.Tests.Text;

/// <summary>
/// Where the test fixtures are: small ones copied into <c>tests/fixtures/</c> (always there), large ones
/// only in the shared folder <c>../shared/fixtures/</c> beside the repository, which may be absent.
/// </summary>
internal static class Fixtures
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>A file under <c>tests/fixtures/</c>.</summary>
    public static string Local(string relative) => Path.Combine(RepoRoot, "tests", "fixtures", relative);

    /// <summary>A file under <c>../shared/fixtures/</c> (may not exist).</summary>
    public static string Shared(string relative) => Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "fixtures", relative));

    public static string TinyLlamaDir => Local("tokenizers/tinyllama-1.1b-chat-v1.0");

    private static readonly Lazy<Tokenizer> tinyLlama = new(() => Tokenizer.Load(Path.Combine(TinyLlamaDir, "tokenizer.json")));
    private static readonly Lazy<Tokenizer> llama3 = new(() => Tokenizer.Load(Shared("tokenizers/llama-3/tokenizer.json")));
    private static readonly Lazy<Tokenizer> mistral = new(() => Tokenizer.Load(Shared("tokenizers/mistral-7b-instruct-v0.3/tokenizer.json")));
    private static readonly Lazy<Tokenizer> qwen3 = new(() =>
    {
        using var gz = new GZipStream(File.OpenRead(Shared("tokenizers/qwen3-0.6b/tokenizer.json.gz")), CompressionMode.Decompress);
        using var reader = new StreamReader(gz);
        return Tokenizer.FromJson(reader.ReadToEnd(), "qwen3 tokenizer.json");
    });

    /// <summary>The Llama-2 / TinyLlama tokenizer (copied into tests/fixtures).</summary>
    public static Tokenizer TinyLlama => tinyLlama.Value;

    public static Tokenizer Llama3 => llama3.Value;

    public static Tokenizer Mistral => mistral.Value;

    public static Tokenizer Qwen3 => qwen3.Value;

    public const string Llama3Json = "tokenizers/llama-3/tokenizer.json";
    public const string MistralJson = "tokenizers/mistral-7b-instruct-v0.3/tokenizer.json";
    public const string Qwen3Json = "tokenizers/qwen3-0.6b/tokenizer.json.gz";

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Irr.slnx"))) return dir.FullName;
        throw new InvalidOperationException($"no Irr.slnx above {AppContext.BaseDirectory}");
    }

    /// <summary>Why a test needing a shared fixture is skipped, or null when the file is there.</summary>
    public static string? SkipUnlessShared(string relative)
    {
        string path = Shared(relative);
        return File.Exists(path) ? null : $"needs the shared fixture {path}, which is absent (the shared folder is not beside the repository)";
    }
}

/// <summary>
/// A fact that is skipped, saying which file is missing, when a shared fixture is absent. The reason is also in the
/// test's display name, because `dotnet test`'s console output lists skipped tests by name only.
/// </summary>
public sealed class SharedFixtureFactAttribute : FactAttribute
{
    public SharedFixtureFactAttribute(string relativePath, [System.Runtime.CompilerServices.CallerMemberName] string test = "")
    {
        if (Fixtures.SkipUnlessShared(relativePath) is { } reason) (Skip, DisplayName) = (reason, $"{test} (skipped: {reason})");
    }
}

/// <summary>A theory that is skipped, saying which file is missing (also in its display name), when a shared fixture is absent.</summary>
public sealed class SharedFixtureTheoryAttribute : TheoryAttribute
{
    public SharedFixtureTheoryAttribute(string relativePath, [System.Runtime.CompilerServices.CallerMemberName] string test = "")
    {
        if (Fixtures.SkipUnlessShared(relativePath) is { } reason) (Skip, DisplayName) = (reason, $"{test} (skipped: {reason})");
    }
}
