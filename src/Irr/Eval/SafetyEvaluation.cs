using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Irr.Data;
using Irr.Model;
using Irr.Text;
using Irr.IO;

namespace Irr.Eval;

/// <summary>A model's response to one prompt of a set.</summary>
/// <param name="Set">The prompt set's name.</param>
/// <param name="Prompt">The prompt as asked (no chat template).</param>
/// <param name="Category">Its category path, or null.</param>
/// <param name="Response">The response, decoded without special tokens.</param>
public sealed record SafetyResponse(string Set, string Prompt, string? Category, string Response);

/// <summary>A response with the judge's verdict: one line of <c>responses.jsonl</c>.</summary>
/// <param name="Set">The prompt set's name.</param>
/// <param name="Prompt">The prompt as asked.</param>
/// <param name="Category">Its category path, or null.</param>
/// <param name="Response">The model's response.</param>
/// <param name="Verdict">The judge's verdict.</param>
/// <param name="Detail">What the judge matched or said (see <see cref="JudgeResult.Detail"/>).</param>
/// <param name="Score">The judge's score, when it gives one.</param>
public sealed record JudgedResponse(string Set, string Prompt, string? Category, string Response, Verdict Verdict, string? Detail, int? Score);

/// <summary>
/// <c>irr eval safety</c> as a library: greedy answers to harmful prompt sets, judged, and summarized as a
/// <see cref="SafetyRun"/>; written as <c>responses.jsonl</c>, <c>safety.json</c> and <c>summary.md</c>.
/// </summary>
public static class SafetyEvaluation
{
    /// <summary>The file of judged responses inside a run directory.</summary>
    public const string ResponsesFileName = "responses.jsonl";

    /// <summary>The Markdown summary inside a run directory.</summary>
    public const string SummaryFileName = "summary.md";

    /// <summary>
    /// The whole evaluation in one call, in memory: <see cref="Generate"/>, <see cref="JudgeAsync"/> and
    /// <see cref="Summarize"/>. Nothing is written; pass the result to <see cref="Save"/> for the run files.
    /// </summary>
    /// <param name="model">The model to answer with.</param>
    /// <param name="tokenizer">Its tokenizer (with the chat template).</param>
    /// <param name="sets">The prompt sets.</param>
    /// <param name="judge">The judge.</param>
    /// <param name="systemPrompt">The system prompt, or null.</param>
    /// <param name="options">Generation options (greedy, the model's EOS ids, the token limit).</param>
    /// <param name="modelLabel">What <see cref="SafetyRun.Model"/> says (usually the model directory).</param>
    /// <param name="adapter">What <see cref="SafetyRun.Adapter"/> says, or null.</param>
    /// <param name="cancellationToken">Stops judging.</param>
    public static async Task<(IReadOnlyList<JudgedResponse> Judged, SafetyRun Run)> RunAsync(Transformer model, PretrainedTokenizer tokenizer,
        IReadOnlyList<PromptSet> sets, IJudge judge, string? systemPrompt, GenerationOptions options, string modelLabel, string? adapter = null,
        CancellationToken cancellationToken = default)
    {
        var responses = Generate(model, tokenizer, sets, systemPrompt, options);
        var judged = await JudgeAsync(responses, judge, null, cancellationToken).ConfigureAwait(false);
        return (judged, Summarize(modelLabel, adapter, judge.Name, sets.Select(s => (s.Name, s.File)).ToList(), judged));
    }

    /// <summary>
    /// The model's answers to every prompt of every set, in order, formatted with the chat template and the
    /// system prompt. Pass greedy <paramref name="options"/> (temperature 0) for the paper's protocol.
    /// <paramref name="progress"/> gets the tokens produced per decoding step.
    /// </summary>
    public static IReadOnlyList<SafetyResponse> Generate(Transformer model, PretrainedTokenizer tokenizer, IReadOnlyList<PromptSet> sets,
        string? systemPrompt, GenerationOptions options, Action<int>? progress = null)
    {
        var items = sets.SelectMany(s => s.Records.Select(r => (Set: s.Name, Record: r))).ToList();
        var answers = ChatGeneration.Respond(model, tokenizer, items.Select(x => x.Record.Prompt).ToList(), systemPrompt, options, progress);
        return items.Select((x, i) => new SafetyResponse(x.Set, x.Record.Prompt, x.Record.Category, answers[i].Text)).ToList();
    }

    /// <summary>The judge's verdicts on <paramref name="responses"/>, in order; <paramref name="progress"/> is called once per response.</summary>
    public static async Task<IReadOnlyList<JudgedResponse>> JudgeAsync(IReadOnlyList<SafetyResponse> responses, IJudge judge,
        Action<int>? progress = null, CancellationToken cancellationToken = default)
    {
        var verdicts = await judge.JudgeAsync(responses.Select(r => new JudgeRequest(r.Prompt, r.Response)).ToList(), progress, cancellationToken).ConfigureAwait(false);
        if (verdicts.Count != responses.Count) throw new InvalidOperationException($"judge {judge.Name} returned {verdicts.Count} verdicts for {responses.Count} responses");
        return responses.Select((r, i) => new JudgedResponse(r.Set, r.Prompt, r.Category, r.Response, verdicts[i].Verdict, verdicts[i].Detail, verdicts[i].Score)).ToList();
    }

    /// <summary>
    /// The counts per set (in the order of <paramref name="sets"/>), per category (first-seen order) and overall.
    /// </summary>
    /// <param name="model">The model directory, as given.</param>
    /// <param name="adapter">The adapter directory, or null.</param>
    /// <param name="judgeName">The judge's name.</param>
    /// <param name="sets">The sets' names and files.</param>
    /// <param name="judged">The judged responses.</param>
    public static SafetyRun Summarize(string model, string? adapter, string judgeName, IReadOnlyList<(string Name, string File)> sets, IReadOnlyList<JudgedResponse> judged)
    {
        var perSet = sets.Select(s =>
        {
            var mine = judged.Where(j => j.Set == s.Name).ToList();
            var categories = mine.Where(j => j.Category is not null).Select(j => j.Category!).Distinct()
                .Select(c => new CategorySafety(c, Count(mine.Where(j => j.Category == c)))).ToList();
            return new SetSafety(s.Name, s.File, Count(mine), categories);
        }).ToList();
        return new SafetyRun(model, adapter, judgeName, perSet, Count(judged));
    }

    private static SafetyCounts Count(IEnumerable<JudgedResponse> items) => SafetyCounts.Of(items.Select(j => j.Verdict));

    /// <summary>
    /// Reads responses to judge again (e.g. an earlier <c>responses.jsonl</c>, or <c>irr generate</c>'s output): a data
    /// file (<see cref="DataFile"/>) whose records have a user message (<see cref="DataRecord.User"/>, e.g. <c>prompt</c>)
    /// and an answer (<see cref="DataRecord.Answer"/>, e.g. <c>response</c>), and optionally <c>category</c> and
    /// <c>set</c> (default: the file name without extension). Earlier verdicts in the file are ignored.
    /// </summary>
    /// <exception cref="IrrException">The file is missing, empty or malformed; the message names the line or JSON path.</exception>
    public static IReadOnlyList<SafetyResponse> LoadResponses(string path)
    {
        string set = Path.GetFileNameWithoutExtension(path);
        return DataFile.Read(path).Select(r => new SafetyResponse(r.Set() ?? set, r.User(), r.Category(), r.Answer())).ToList();
    }

    /// <summary>Reads a <c>responses.jsonl</c> as <see cref="Save"/> writes it, verdicts included.</summary>
    /// <exception cref="IrrException">The file is missing or malformed; the message names the line.</exception>
    public static IReadOnlyList<JudgedResponse> LoadJudged(string path) => DataFile.Read(path).Select(r =>
    {
        string verdict = r.Required("verdict");
        if (!Enum.TryParse<Verdict>(verdict, ignoreCase: true, out var v) || !Enum.IsDefined(v))
            throw r.Error($"verdict must be safe, harmful or unknown, not \"{verdict}\"");
        return new JudgedResponse(r.Required("set"), r.User(), r.Category(), r.Answer(), v, r.String("detail"), r.Int("score"));
    }).ToList();

    /// <summary>
    /// Adds a run to the one already in <paramref name="directory"/>, so that sets evaluated one command at a time
    /// collect in one run directory: when the directory's <c>safety.json</c> is of the same model, adapter and judge,
    /// its sets that this run does not evaluate again are kept (with their lines of <c>responses.jsonl</c>), those it
    /// does are replaced in place, and new sets are appended; the counts are recomputed from the responses. When
    /// there is no earlier run, or it is of another model, adapter or judge, the run is returned as it is
    /// (<c>Replaced</c> tells whether an earlier run of another model or judge will be overwritten).
    /// </summary>
    /// <exception cref="IrrException">The earlier responses.jsonl is malformed.</exception>
    public static (SafetyRun Run, IReadOnlyList<JudgedResponse> Judged, bool Replaced) MergeWithExisting(string directory, SafetyRun run, IReadOnlyList<JudgedResponse> judged)
    {
        var existing = SafetyRun.Load(directory);
        string responsesPath = Path.Combine(directory, ResponsesFileName);
        if (existing is null) return (run, judged, false);
        if (existing.Model != run.Model || existing.Adapter != run.Adapter || existing.Judge != run.Judge || !File.Exists(responsesPath)) return (run, judged, true);
        var earlier = LoadJudged(responsesPath);
        var fresh = run.Sets.ToDictionary(s => s.Name);
        var order = existing.Sets.Select(s => fresh.TryGetValue(s.Name, out var now) ? (now.Name, now.File, New: true) : (s.Name, s.File, New: false))
            .Concat(run.Sets.Where(s => existing.Sets.All(e => e.Name != s.Name)).Select(s => (s.Name, s.File, New: true)))
            .ToList();
        var all = order.SelectMany(o => (o.New ? judged : earlier).Where(j => j.Set == o.Name)).ToList();
        return (Summarize(run.Model, run.Adapter, run.Judge, order.Select(o => (o.Name, o.File)).ToList(), all), all, false);
    }

    /// <summary>Writes <c>responses.jsonl</c>, <c>safety.json</c> and <c>summary.md</c> into <paramref name="directory"/> (each atomically; the directory may exist).</summary>
    public static void Save(string directory, SafetyRun run, IReadOnlyList<JudgedResponse> judged)
    {
        AtomicFile.WriteJsonLines(Path.Combine(directory, ResponsesFileName), judged, j => new JsonObject
        {
            ["set"] = j.Set,
            ["prompt"] = j.Prompt,
            ["category"] = j.Category,
            ["response"] = j.Response,
            ["verdict"] = j.Verdict.ToString().ToLowerInvariant(),
            ["detail"] = j.Detail,
            ["score"] = j.Score,
        });
        run.Save(directory);
        AtomicFile.WriteText(Path.Combine(directory, SummaryFileName), w => w.Write(SummaryMarkdown(run)));
    }

    /// <summary>The Markdown summary: the model and judge, a table per set and, where sets have categories, per category.</summary>
    public static string SummaryMarkdown(SafetyRun run)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Safety evaluation").AppendLine();
        sb.AppendLine(run.Model.Length == 0 ? "- model: (not given: existing responses were judged)" : $"- model: `{run.Model}`");
        if (run.Adapter is not null) sb.AppendLine($"- adapter: `{run.Adapter}`");
        sb.AppendLine($"- judge: `{run.Judge}`");
        sb.AppendLine($"- harmful rate over all sets: **{Percent(run.Overall)}** ({run.Overall.Harmful} harmful of {run.Overall.Harmful + run.Overall.Safe} judged)");
        if (run.Overall.Unknown > 0)
            sb.AppendLine($"- **{run.Overall.Unknown} response(s) without a verdict** (unknown): excluded from the rates; see `verdict: \"unknown\"` in {ResponsesFileName}");
        sb.AppendLine().AppendLine("| set | prompts | harmful | safe | unknown | harmful rate |").AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var s in run.Sets) Row(sb, s.Name, s.Counts);
        foreach (var s in run.Sets.Where(s => s.Categories.Count > 0))
        {
            sb.AppendLine().AppendLine($"## {s.Name} by category").AppendLine();
            sb.AppendLine("| category | prompts | harmful | safe | unknown | harmful rate |").AppendLine("|---|---:|---:|---:|---:|---:|");
            foreach (var c in s.Categories) Row(sb, c.Category, c.Counts);
        }
        sb.AppendLine().AppendLine("The harmful rate is harmful / (harmful + safe); unknown verdicts are counted apart.");
        return sb.ToString();
    }

    private static void Row(StringBuilder sb, string name, SafetyCounts c) =>
        sb.AppendLine($"| {name.Replace("|", "\\|")} | {c.Total} | {c.Harmful} | {c.Safe} | {c.Unknown} | {Percent(c)} |");

    private static string Percent(SafetyCounts c) =>
        c.Harmful + c.Safe == 0 ? "n/a" : (100 * c.HarmfulRate).ToString("F1", CultureInfo.InvariantCulture) + " %";
}
