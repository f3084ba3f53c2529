using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Irr.Jobs;

namespace Irr.IO;

/// <summary>
/// The model-card option of every command that writes a model or an adapter (realign, sweep, the baselines, train,
/// convert, demo, demo pretrain),
/// declared once here and held by each job as <c>[Options]</c>.
/// </summary>
public sealed record ModelCardOptions
{
    /// <summary>false (<c>--no-model-card</c>): write no README.md (the one of the input's folder is then copied as before).</summary>
    [Option("write no README.md model card (YAML front matter for the Hub: base_model, library_name, tags, license; the method and its settings)",
        Name = "no-model-card", Negated = true, Fingerprinted = false)]
    public bool ModelCard { get; init; } = true;

    /// <summary>A paragraph every card of the job carries (<see cref="IO.ModelCard.Note"/>; irr demo's toy world), or null. Not an option.</summary>
    public string? Note { get; init; }

    /// <summary>The card <paramref name="card"/> makes, with <see cref="Note"/>; null (no card) with <c>--no-model-card</c>.</summary>
    public IO.ModelCard? Of(Func<IO.ModelCard> card)
    {
        if (!ModelCard) return null;
        var made = card();
        return Note is null ? made : made with { Note = Note };
    }
}

/// <summary>
/// A Hugging Face model card: README.md with YAML front matter in the Hub's model-card metadata format
/// (huggingface_hub's <c>ModelCardData</c> and hub-docs' modelcard.md: <c>base_model</c>, <c>base_model_relation</c>,
/// <c>datasets</c>, <c>library_name</c>, <c>license</c>/<c>license_name</c>/<c>license_link</c>, <c>pipeline_tag</c>,
/// <c>tags</c>), then a Markdown body naming the method, its paper and its settings, and an evaluation summary when the
/// command has one. Written inside the output's temporary directory, before its rename, so a model is never without it.
/// It replaces a README.md the input's folder had (as mergekit's card does: the base's card describes another model).
/// What the front matter may hold is what the Hub accepts: <c>base_model</c> only when it is a repo ID
/// (<see cref="HubCache.RepoIdProblem"/>; otherwise the body names it), <c>datasets</c> only as Hub dataset IDs (a local
/// file's name and hash are in the body's settings), the licence only as one of the Hub's identifiers
/// (<see cref="CardLicense"/>), tags lower-case without spaces. No <c>model-index</c>: its <c>dataset.type</c> must be a
/// Hub data set, and irr's validation sets are local files, so the evaluation is in the body.
/// </summary>
/// <param name="BaseModel">The base model: its Hub ID when it came from one, else the input directory's name (<see cref="BaseModelOf"/>); null for a model trained from scratch.</param>
/// <param name="LibraryName"><c>transformers</c> for a model directory, <c>peft</c> for an adapter.</param>
/// <param name="Method">The method's tag and name (<c>irr</c>, <c>resta</c>, <c>safelora</c>, <c>convert</c> …).</param>
/// <param name="Title">The method's title in the body ("IRR: Identify, Remove, and Recalibrate").</param>
/// <param name="Paper">The method's paper (an arXiv URL), or null.</param>
/// <param name="Settings">The settings, in order, each a name and its value as text.</param>
/// <param name="License">The base's licence (<see cref="CardLicense.Of"/>), or null when unknown.</param>
public sealed record ModelCard(string? BaseModel, string LibraryName, string Method, string Title, string? Paper,
    IReadOnlyList<(string Name, string Value)> Settings, CardLicense? License = null)
{
    /// <summary>The card's file name in the output directory.</summary>
    public const string FileName = "README.md";

    /// <summary>The IRR paper (Wu et al. 2024).</summary>
    public const string IrrPaper = "https://arxiv.org/abs/2412.11041";

    /// <summary>The Hub's relations of a model to its base (hub-docs model-cards.md, "Specifying a base model").</summary>
    public const string Adapter = "adapter", Finetune = "finetune";

    /// <summary>
    /// <c>base_model_relation</c>: <see cref="Adapter"/>, <see cref="Finetune"/>, <c>merge</c> or <c>quantized</c>, or null
    /// to leave it to the Hub (<c>convert</c>: the same weights in another file format is none of the four).
    /// </summary>
    public string? BaseModelRelation { get; init; }

    /// <summary>Hub data sets the command read (<c>org/name</c>, <see cref="DatasetOf"/>); local files are not listed.</summary>
    public IReadOnlyList<string> Datasets { get; init; } = [];

    /// <summary>A paragraph after the title (irr demo: the model belongs to a toy world), or null.</summary>
    public string? Note { get; init; }

    /// <summary>Lines of the evaluation summary (Markdown list items without the dash), empty when the command has none.</summary>
    public IReadOnlyList<string> Evaluation { get; init; } = [];

    /// <summary>Whether <see cref="BaseModel"/> can stand in the front matter: a repo ID (<c>name</c> or <c>org/name</c>).</summary>
    public bool BaseModelIsRepoId => BaseModel is not null && HubCache.RepoIdProblem(BaseModel) is null;

    /// <summary>The card's text: front matter between <c>---</c> lines, then the body.</summary>
    public string Render()
    {
        var text = new StringBuilder();
        text.Append("---\n");
        if (BaseModelIsRepoId)
        {
            text.Append($"base_model: {Quote(BaseModel!)}\n");
            if (BaseModelRelation is not null) text.Append($"base_model_relation: {BaseModelRelation}\n");
        }
        if (Datasets.Count > 0) text.Append("datasets:\n").Append(string.Concat(Datasets.Distinct().Select(d => $"- {Quote(d)}\n")));
        text.Append($"library_name: {LibraryName}\n");
        if (License is not null) text.Append(License.FrontMatter());
        text.Append("pipeline_tag: text-generation\n");
        text.Append("tags:\n");
        foreach (string tag in Tags()) text.Append($"- {tag}\n");
        text.Append("---\n\n");
        text.Append(BaseModel is null ? $"# {Inline(Method)}\n\n" : $"# {Inline(BaseModel)} ({Inline(Method)})\n\n");
        text.Append($"Written by irr (IRR.NET) with {Inline(Title)}");
        text.Append(Paper is null ? ".\n\n" : $" ({Paper}).\n\n");
        if (Note is not null) text.Append(Inline(Note)).Append("\n\n");
        if (BaseModel is not null && !BaseModelIsRepoId) text.Append($"Base model: `{Code(BaseModel)}` (a local directory's name, not a Hub repo ID, so not in the metadata).\n\n");
        text.Append("## Settings\n\n");
        foreach (var (name, value) in Settings) text.Append($"- {Inline(name)}: `{Code(value)}`\n");
        return text.Append(EvaluationSection(Evaluation)).ToString();
    }

    // irr, safety-realignment on what a realignment wrote (not on train's, convert's or a pretraining's output), the method:
    // lower-case, a run of anything but a-z, 0-9 and '-' made one '-'.
    private IEnumerable<string> Tags()
    {
        string method = Regex.Replace(Method.ToLowerInvariant(), "[^a-z0-9-]+", "-").Trim('-');
        string[] tags = method is "train" or "convert" or "pretrain" ? ["irr", method] : ["irr", "safety-realignment", method];
        return tags.Where(t => t.Length > 0).Distinct();
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
    /// The Hub data set of a data file, for <see cref="Datasets"/>: <c>org/name</c> when the file is in a data set's
    /// snapshot in the Hugging Face cache (<see cref="HubCache.RepoOfCachedPath"/>; an <c>hf://datasets/…</c> option is
    /// bound to that file before the job runs); null for any other path.
    /// </summary>
    public static string? DatasetOf(string? path) =>
        path is not null && HubCache.RepoOfCachedPath(path) is { RepoType: "dataset" } cached ? cached.RepoId : null;

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
