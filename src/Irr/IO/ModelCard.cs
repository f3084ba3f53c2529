using System.Globalization;
using System.Text;
using Irr.Jobs;

namespace Irr.IO;

/// <summary>
/// The model-card option of every command that writes a model or an adapter (realign, train, convert, the baselines),
/// declared once here and held by each job as <c>[Options]</c>.
/// </summary>
public sealed record ModelCardOptions
{
    /// <summary>false (<c>--no-model-card</c>): write no README.md (the one of the input's folder is then copied as before).</summary>
    [Option("write no README.md model card (YAML front matter for the Hub: base_model, library_name, tags, license; the method and its settings)",
        Name = "no-model-card", Negated = true, Fingerprinted = false)]
    public bool ModelCard { get; init; } = true;
}

/// <summary>
/// A Hugging Face model card: README.md with YAML front matter in the Hub's model-card metadata format
/// (huggingface_hub's <c>ModelCardData</c>: <c>base_model</c>, <c>library_name</c>, <c>license</c>, <c>pipeline_tag</c>,
/// <c>tags</c>), then a Markdown body naming the method, its paper and its settings, and an evaluation summary when the
/// command has one. Written inside the output's temporary directory, before its rename, so a model is never without it.
/// It replaces a README.md the input's folder had (as mergekit's card does: the base's card describes another model).
/// </summary>
/// <param name="BaseModel">The base model: its Hub ID when it came from one, else the input directory's name (<see cref="BaseModelOf"/>).</param>
/// <param name="LibraryName"><c>transformers</c> for a model directory, <c>peft</c> for an adapter.</param>
/// <param name="Method">The method's tag and name (<c>irr</c>, <c>resta</c>, <c>safelora</c>, <c>convert</c> …).</param>
/// <param name="Title">The method's title in the body ("IRR: Identify, Remove, and Recalibrate").</param>
/// <param name="Paper">The method's paper (an arXiv URL), or null.</param>
/// <param name="Settings">The settings, in order, each a name and its value as text.</param>
/// <param name="License">The base's licence (<see cref="LicenseOf"/>), or null when unknown.</param>
public sealed record ModelCard(string BaseModel, string LibraryName, string Method, string Title, string? Paper,
    IReadOnlyList<(string Name, string Value)> Settings, string? License = null)
{
    /// <summary>The card's file name in the output directory.</summary>
    public const string FileName = "README.md";

    /// <summary>The IRR paper (Wu et al. 2024).</summary>
    public const string IrrPaper = "https://arxiv.org/abs/2412.11041";

    /// <summary>Lines of the evaluation summary (Markdown list items without the dash), empty when the command has none.</summary>
    public IReadOnlyList<string> Evaluation { get; init; } = [];

    /// <summary>The card's text: front matter between <c>---</c> lines, then the body.</summary>
    public string Render()
    {
        var text = new StringBuilder();
        text.Append("---\n");
        text.Append($"base_model: {Quote(BaseModel)}\n");
        text.Append($"library_name: {Quote(LibraryName)}\n");
        if (License is not null) text.Append($"license: {Quote(License)}\n");
        text.Append("pipeline_tag: text-generation\n");
        text.Append("tags:\n");
        // safety-realignment only on what a realignment wrote (not on train's or convert's output)
        foreach (string tag in (Method is "train" or "convert" ? ["irr", Method] : (string[])["irr", "safety-realignment", Method]).Distinct())
            text.Append($"- {Quote(tag)}\n");
        text.Append("---\n\n");
        text.Append($"# {Inline(BaseModel)} ({Inline(Method)})\n\n");
        text.Append($"Written by irr (IRR.NET) with {Inline(Title)}");
        text.Append(Paper is null ? ".\n\n" : $" ({Paper}).\n\n");
        text.Append("## Settings\n\n");
        foreach (var (name, value) in Settings) text.Append($"- {Inline(name)}: `{Code(value)}`\n");
        return text.Append(EvaluationSection(Evaluation)).ToString();
    }

    /// <summary>
    /// The body's last section, "Evaluation", one list item per line of <paramref name="lines"/> (empty text for none): what
    /// <see cref="Render"/> ends with, and what the sweep appends to the chosen point's card.
    /// </summary>
    public static string EvaluationSection(IReadOnlyList<string> lines) =>
        lines.Count == 0 ? "" : "\n## Evaluation\n\n" + string.Concat(lines.Select(line => $"- {Inline(line)}\n"));

    /// <summary>Writes <see cref="Render"/> to <paramref name="path"/> (UTF-8, no byte-order mark).</summary>
    public void Write(string path) => File.WriteAllText(path, Render(), new UTF8Encoding(false));

    /// <summary>
    /// The <c>base_model</c> of an input: its Hub ID <c>org/name</c> when it is a snapshot of the Hugging Face cache
    /// (<c>…/models--org--name/snapshots/&lt;commit&gt;</c>, where a Hub ID resolves), else the directory's name (a
    /// trailing separator ignored).
    /// </summary>
    public static string BaseModelOf(string path) =>
        HubCache.RepoOfSnapshot(path)?.RepoId
        ?? (Path.GetFileName(Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar)) is { Length: > 0 } name ? name : path);

    /// <summary>
    /// The <c>license</c> of the model card in <paramref name="directory"/> (README.md's front matter, a top-level
    /// <c>license:</c> line with a plain or quoted scalar), or null when there is no card, no front matter or no licence.
    /// </summary>
    public static string? LicenseOf(string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) return null;
        using var reader = new StreamReader(path);
        if (reader.ReadLine()?.TrimEnd() != "---") return null;
        for (int i = 0; i < 1000 && reader.ReadLine() is { } line && line.TrimEnd() != "---"; i++)
        {
            if (!line.StartsWith("license:", StringComparison.Ordinal)) continue;
            string value = line["license:".Length..].Trim();
            if (value.Length >= 2 && (value[0] is '"' or '\'') && value[^1] == value[0]) value = value[1..^1];
            return value.Length > 0 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '+') ? value : null;
        }
        return null;
    }

    /// <summary>
    /// A YAML double-quoted scalar: <c>"</c> and <c>\</c> escaped, every control character, line or paragraph separator
    /// and BOM as <c>\xNN</c>/<c>\uNNNN</c> (YAML 1.2 §5.7), so an untrusted name can neither end the scalar nor the front matter.
    /// </summary>
    public static string Quote(string value)
    {
        var text = new StringBuilder("\"");
        bool wellFormed = IsWellFormed(value);
        foreach (char c in value)
        {
            if (c is '"' or '\\') text.Append('\\').Append(c);
            else if (c < 0x20 || c == 0x7f) text.Append("\\x").Append(((int)c).ToString("X2", CultureInfo.InvariantCulture));
            else if (char.IsControl(c) || c is '\u2028' or '\u2029' or '\uFEFF' || char.IsSurrogate(c) && !wellFormed)
                text.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
            else text.Append(c);
        }
        return text.Append('"').ToString();
    }

    private static bool IsWellFormed(string value)
    {
        for (int i = 0; i < value.Length; i++)
        {
            if (char.IsHighSurrogate(value[i]) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1])) i++;
            else if (char.IsSurrogate(value[i])) return false;
        }
        return true;
    }

    // Markdown text: control characters shown as \uNNNN, one line, Markdown's specials escaped.
    private static string Inline(string value)
    {
        var text = new StringBuilder();
        foreach (char c in value)
        {
            if (char.IsControl(c) || c is '\u2028' or '\u2029') text.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
            else if ("\\`*_{}[]<>()#+!|~".Contains(c)) text.Append('\\').Append(c);
            else text.Append(c);
        }
        return text.ToString();
    }

    // A code span's content: control characters shown as \uNNNN, backticks replaced (a code span cannot escape them).
    private static string Code(string value) =>
        string.Concat(value.Select(c => char.IsControl(c) || c is '\u2028' or '\u2029' ? $"\\u{(int)c:X4}" : c == '`' ? "'" : c.ToString()));
}
