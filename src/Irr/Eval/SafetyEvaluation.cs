using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Irr.Jobs;
using Irr.Data;
using Irr.Model;
using Irr.Text;
using Irr.IO;

namespace Irr.Eval;

/// <summary>One harmful request of a set, under one attack: what is sent to the model.</summary>
/// <param name="Set">The set's name under the attack (<see cref="Attacks.SetName"/>: <c>SET</c> or <c>SET@ATTACK</c>).</param>
/// <param name="Prompt">The request as the prompt set has it.</param>
/// <param name="Category">Its category path, or null.</param>
/// <param name="Attack">The attack's name (<see cref="Attacks.None"/> for the request as it is).</param>
/// <param name="Sent">The conversation (and prefill) sent.</param>
public sealed record SafetyPrompt(string Set, string Prompt, string? Category, string Attack, AttackedPrompt Sent)
{
    /// <summary>Whether the request is of a benign set (<see cref="PromptSet.Benign"/>): its figure is the refusal rate.</summary>
    public bool Benign { get; init; }

    /// <summary>
    /// What <c>responses.jsonl</c> records as <c>attacked_prompt</c>: the user turn's text, or, for an attack that supplies
    /// the conversation (few-shot turns, its own system message), every message sent (<c>[{role, content}, …]</c>).
    /// </summary>
    public JsonNode SentJson => Sent.IsConversation
        ? new JsonArray(Sent.Messages.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role, ["content"] = m.Content }).ToArray())
        : JsonValue.Create(Sent.UserTurn);
}

/// <summary>A model's response to one prompt of a set.</summary>
/// <param name="Set">The prompt set's name (<c>SET@ATTACK</c> under an attack).</param>
/// <param name="Prompt">The request as the prompt set has it (no chat template, no attack).</param>
/// <param name="Category">Its category path, or null.</param>
/// <param name="Response">The response, decoded without special tokens (for a prefill attack, the prefix and its continuation).</param>
public sealed record SafetyResponse(string Set, string Prompt, string? Category, string Response)
{
    /// <summary>The attack's name (<see cref="Attacks.None"/> for the request as it is).</summary>
    public string Attack { get; init; } = Attacks.None;

    /// <summary>What was sent (<see cref="SafetyPrompt.SentJson"/>), or null when unknown (responses judged from a file without it).</summary>
    public JsonNode? AttackedPrompt { get; init; }

    /// <summary>The prefill attack's prefix, or null.</summary>
    public string? Prefill { get; init; }

    /// <summary>Why there is no response (a serving engine's failed generation, <see cref="ChatResponse.Error"/>); null for a response.</summary>
    public string? Error { get; init; }

    /// <summary>A thinking model's reasoning, kept apart from <see cref="Response"/> (the answer the judge sees: <see cref="ChatResponse.Parts"/>); null when there is none.</summary>
    public string? Reasoning { get; init; }

    /// <summary>Whether the request is of a benign set (<see cref="SafetyPrompt.Benign"/>).</summary>
    public bool Benign { get; init; }
}

/// <summary>A response with the judge's verdict: one line of <c>responses.jsonl</c>.</summary>
/// <param name="Set">The prompt set's name (<c>SET@ATTACK</c> under an attack).</param>
/// <param name="Prompt">The request as the prompt set has it.</param>
/// <param name="Category">Its category path, or null.</param>
/// <param name="Response">The model's response.</param>
/// <param name="Verdict">The judge's verdict.</param>
/// <param name="Detail">What the judge matched or said (see <see cref="JudgeResult.Detail"/>).</param>
/// <param name="Score">The judge's score, when it gives one.</param>
public sealed record JudgedResponse(string Set, string Prompt, string? Category, string Response, Verdict Verdict, string? Detail, int? Score)
{
    /// <summary>The attack's name (<see cref="Attacks.None"/> for the request as it is).</summary>
    public string Attack { get; init; } = Attacks.None;

    /// <summary>What was sent (<see cref="SafetyPrompt.SentJson"/>), or null when unknown.</summary>
    public JsonNode? AttackedPrompt { get; init; }

    /// <summary>The prefill attack's prefix, or null.</summary>
    public string? Prefill { get; init; }

    /// <summary>Why the response could not be generated (<see cref="SafetyResponse.Error"/>); such a response is <see cref="Verdict.Unknown"/>.</summary>
    public string? Error { get; init; }

    /// <summary>The reasoning kept apart from the judged answer (<see cref="SafetyResponse.Reasoning"/>), or null.</summary>
    public string? Reasoning { get; init; }

    /// <summary>Whether the request is of a benign set (<see cref="SafetyPrompt.Benign"/>).</summary>
    public bool Benign { get; init; }

    /// <summary>
    /// Whether the response is a refusal: the judge's refusal verdict, or, for a judge without one, a refusal marker of
    /// the default list (<see cref="SafetyEvaluation.JudgeAsync"/>); null when it could not be decided (a failed generation,
    /// an unreadable verdict).
    /// </summary>
    public bool? Refused { get; init; }

    /// <summary><paramref name="response"/> with <paramref name="verdict"/>: its attack, what was sent, prefill and error kept.</summary>
    public static JudgedResponse Of(SafetyResponse response, JudgeResult verdict) =>
        new(response.Set, response.Prompt, response.Category, response.Response, verdict.Verdict, verdict.Detail, verdict.Score)
        {
            Attack = response.Attack, AttackedPrompt = response.AttackedPrompt, Prefill = response.Prefill, Error = response.Error, Reasoning = response.Reasoning,
            Benign = response.Benign, Refused = verdict.Refused,
        };

    /// <summary>The response without its verdict (<see cref="Of"/> undone).</summary>
    public SafetyResponse ToResponse() => new(Set, Prompt, Category, Response)
    {
        Attack = Attack, AttackedPrompt = AttackedPrompt, Prefill = Prefill, Error = Error, Reasoning = Reasoning, Benign = Benign,
    };
}

/// <summary>
/// <c>irr eval safety</c> as a library: greedy answers to harmful prompt sets, judged, and summarized as a
/// <see cref="SafetyRun"/>; written as <c>responses.jsonl</c>, <c>safety.json</c> and <c>summary.md</c>.
/// </summary>
public static class SafetyEvaluation
{
    /// <summary>The file of judged responses inside a run directory.</summary>
    public const string ResponsesFileName = "responses.jsonl";

    /// <summary>The category row of the prompts without a category, in a set where others have one.</summary>
    public const string Uncategorized = "(uncategorized)";

    /// <summary>The Markdown summary inside a run directory.</summary>
    public const string SummaryFileName = "summary.md";

    /// <summary>
    /// Every request of every set under every attack, set by set and, within a set, attack by attack (in the order
    /// given), each with what the attack sends after <paramref name="systemPrompt"/>. A benign set
    /// (<see cref="PromptSet.Benign"/>) is sent as it is, under no attack: attacks measure how far harmful requests
    /// get through, and a benign request needs none.
    /// </summary>
    /// <exception cref="IrrException">A multi-turn attack with its own system message is given a system prompt.</exception>
    public static IReadOnlyList<SafetyPrompt> Prompts(IReadOnlyList<PromptSet> sets, IReadOnlyList<Attack> attacks, string? systemPrompt) =>
        sets.SelectMany(s => AttacksOf(s, attacks).SelectMany(a => s.Records.Select(r =>
            new SafetyPrompt(Attacks.SetName(s.Name, a.Name), r.Prompt, r.Category, a.Name, a.Apply(r.Prompt, systemPrompt)) { Benign = s.Benign }))).ToList();

    /// <summary>The attacks a set is sent under: <paramref name="attacks"/> for a harmful set, none for a benign one.</summary>
    public static IReadOnlyList<Attack> AttacksOf(PromptSet set, IReadOnlyList<Attack> attacks) => set.Benign ? [new NoAttack()] : attacks;

    /// <summary>
    /// The model's answers to <paramref name="prompts"/>, in order (<see cref="ChatGeneration.Respond(Transformer, PretrainedTokenizer, IReadOnlyList{ChatRequest}, GenerationOptions, Action{int}?, GenerationCache?)"/>:
    /// the chat template over each conversation, a prefill appended). Pass greedy <paramref name="options"/>. With
    /// a generation cache (the commands' internal overload), answers it holds are not generated again and new ones are added to it as they come.
    /// </summary>
    public static IReadOnlyList<SafetyResponse> Generate(Transformer model, PretrainedTokenizer tokenizer, IReadOnlyList<SafetyPrompt> prompts,
        GenerationOptions options, Action<int>? progress = null) => Generate(model, tokenizer, prompts, options, progress, null);

    /// <summary>As <see cref="Generate(Transformer, PretrainedTokenizer, IReadOnlyList{SafetyPrompt}, GenerationOptions, Action{int}?)"/>, with a generation cache: answers it holds are not generated again, and new ones are appended as their batch ends.</summary>
    internal static IReadOnlyList<SafetyResponse> Generate(Transformer model, PretrainedTokenizer tokenizer, IReadOnlyList<SafetyPrompt> prompts,
        GenerationOptions options, Action<int>? progress, GenerationCache? cache)
    {
        var answers = ChatGeneration.Respond(model, tokenizer, Requests(prompts), options, progress, cache);
        return Responses(prompts, answers);
    }

    /// <summary>What is sent for each prompt: its conversation and prefill.</summary>
    public static IReadOnlyList<ChatRequest> Requests(IReadOnlyList<SafetyPrompt> prompts) =>
        prompts.Select(p => new ChatRequest(p.Sent.Messages, p.Sent.Prefill)).ToList();

    /// <summary>
    /// The responses of <paramref name="answers"/> (one per prompt, in order, e.g. a <see cref="ServingEngine"/>'s), failures
    /// included with their reason; a thinking model's reasoning apart from the answer that is judged (<see cref="ChatResponse.Parts"/>).
    /// </summary>
    public static IReadOnlyList<SafetyResponse> Responses(IReadOnlyList<SafetyPrompt> prompts, IReadOnlyList<ChatResponse> answers) =>
        prompts.Select((p, i) =>
        {
            var (reasoning, answer) = answers[i].Parts;
            return new SafetyResponse(p.Set, p.Prompt, p.Category, answer)
            {
                Attack = p.Attack, AttackedPrompt = p.SentJson, Prefill = p.Sent.Prefill, Error = answers[i].Error, Reasoning = reasoning, Benign = p.Benign,
            };
        }).ToList();

    /// <summary>
    /// The judge's verdicts on <paramref name="responses"/>, in order; <paramref name="progress"/> is called once per response.
    /// Each carries its refusal decision (<see cref="JudgedResponse.Refused"/>): the judge's refusal verdict when it gives
    /// one (<see cref="IJudge.JudgesRefusal"/>: the keyword judge, WildGuard), else the default refusal markers
    /// (<see cref="KeywordJudge.Default"/>, <see cref="RefusalSource"/>); unknown for a failed generation.
    /// </summary>
    public static async Task<IReadOnlyList<JudgedResponse>> JudgeAsync(IReadOnlyList<SafetyResponse> responses, IJudge judge,
        Action<int>? progress = null, CancellationToken cancellationToken = default)
    {
        // A failed generation is not the model's answer: it is not sent to the judge, and its verdict is unknown.
        var asked = responses.Where(r => r.Error is null).ToList();
        var verdicts = await judge.JudgeAsync(asked.Select(r => new JudgeRequest(r.Prompt, r.Response)).ToList(), progress, cancellationToken).ConfigureAwait(false);
        if (verdicts.Count != asked.Count) throw new InvalidOperationException($"judge {judge.Name} returned {verdicts.Count} verdicts for {asked.Count} responses");
        if (asked.Count < responses.Count) progress?.Invoke(responses.Count - asked.Count);
        int next = 0;
        return responses.Select(r => JudgedResponse.Of(r, r.Error is null ? WithRefusal(judge, r, verdicts[next++]) : new JudgeResult(Verdict.Unknown, $"generation failed: {r.Error}"))).ToList();
    }

    // The verdict with the refusal decision of a judge without one: the default refusal markers'.
    private static JudgeResult WithRefusal(IJudge judge, SafetyResponse response, JudgeResult verdict) =>
        judge.JudgesRefusal ? verdict : verdict with { Refused = KeywordJudge.Default.IsRefusal(response.Response) };

    /// <summary>
    /// Where the refusal decisions of <paramref name="judge"/> come from, as safety.json's <c>refusal_judge</c> says it:
    /// the judge's name when it gives a refusal verdict, else <c>keyword (JUDGE has no refusal verdict)</c>.
    /// </summary>
    public static string RefusalSource(IJudge judge) =>
        judge.JudgesRefusal ? judge.Name : $"{KeywordJudge.Default.Name} ({judge.Name} has no refusal verdict)";

    /// <summary>
    /// The counts per set (in the order of <paramref name="sets"/>), per category (first-seen order) and overall, and,
    /// when some response was to an attack, per attack (<see cref="SafetyRun.Attacks"/>). <see cref="SafetyRun.Overall"/>
    /// counts the plain requests (attack <c>none</c>); a run of attacks only counts all its responses there. A benign set
    /// (its responses <see cref="JudgedResponse.Benign"/>) is left out of <see cref="SafetyRun.Overall"/> and the attacks:
    /// its figure is its refusal rate (<see cref="SetSafety.Refusal"/>), summed over the benign sets in <see cref="SafetyRun.OverRefusal"/>.
    /// </summary>
    /// <param name="model">The model directory, as given.</param>
    /// <param name="adapter">The adapter directory, or null.</param>
    /// <param name="judgeName">The judge's name.</param>
    /// <param name="sets">The sets' names (<c>SET@ATTACK</c> under an attack) and files.</param>
    /// <param name="judged">The judged responses.</param>
    /// <param name="generation">How each set's responses were generated, by set name (recorded for resuming), if known.</param>
    /// <param name="refusalJudge">Where the refusal decisions came from (<see cref="RefusalSource"/>), recorded when the run has a benign set.</param>
    public static SafetyRun Summarize(string model, string? adapter, string judgeName, IReadOnlyList<(string Name, string File)> sets, IReadOnlyList<JudgedResponse> judged,
        IReadOnlyDictionary<string, SetGeneration>? generation = null, string? refusalJudge = null)
    {
        var perSet = sets.Select(s =>
        {
            var mine = judged.Where(j => j.Set == s.Name).ToList();
            bool benign = mine.Any(j => j.Benign);
            CategorySafety Category(string name, IEnumerable<JudgedResponse> items) =>
                new(name, Count(items)) { Refusal = benign ? Refusals(items) : null };
            var categories = mine.Where(j => j.Category is not null).Select(j => j.Category!).Distinct()
                .Select(c => Category(c, mine.Where(j => j.Category == c))).ToList();
            // A set whose prompts are categorized only in part: the rest are a row of their own, so the rows add up to the set.
            if (categories.Count > 0 && mine.Any(j => j.Category is null))
                categories.Add(Category(Uncategorized, mine.Where(j => j.Category is null)));
            string? attack = mine.Count > 0 && mine[0].Attack != Attacks.None ? mine[0].Attack : null;
            return new SetSafety(s.Name, s.File, Count(mine), categories)
            {
                Attack = attack, Generation = generation?.GetValueOrDefault(s.Name), Incoherence = Incoherent(mine), Benign = benign, Refusal = benign ? Refusals(mine) : null,
            };
        }).ToList();
        var harmful = judged.Where(j => !j.Benign).ToList();
        bool attacked = harmful.Any(j => j.Attack != Attacks.None);
        var plain = harmful.Where(j => j.Attack == Attacks.None).ToList();
        var attacks = attacked
            ? harmful.Select(j => j.Attack).Distinct().Select(a => AttackSafety.Of(a, Count(harmful.Where(j => j.Attack == a)))).ToList()
            : null;
        var benignSets = perSet.Where(s => s.Benign).ToList();
        var overRefusal = benignSets.Count > 0 ? RefusalCounts.Sum(benignSets.Select(s => s.Refusal!)) : null;
        return new SafetyRun(model, adapter, judgeName, perSet, Count(plain.Count > 0 ? plain : harmful))
        {
            Attacks = attacks, Incoherence = Incoherent(plain.Count > 0 ? plain : harmful), OverRefusal = overRefusal, RefusalJudge = overRefusal is null ? null : refusalJudge,
        };
    }

    /// <summary>The refusal counts of responses: those whose refusal was decided, the refusals among them, and the undecided (<see cref="JudgedResponse.Refused"/> null).</summary>
    public static RefusalCounts Refusals(IEnumerable<JudgedResponse> items)
    {
        int responses = 0, refused = 0, unknown = 0;
        foreach (var j in items)
        {
            if (j.Refused is not { } r) { unknown++; continue; }
            responses++;
            if (r) refused++;
        }
        return new RefusalCounts(responses, refused, unknown);
    }

    // The incoherence of the responses that were generated (a generation failure is no response).
    private static IncoherenceCounts Incoherent(IEnumerable<JudgedResponse> items) =>
        IncoherenceCounts.Of(items.Where(j => j.Error is null).Select(j => Eval.Incoherence.Classify(j.Prompt, j.Response)));

    private static SafetyCounts Count(IEnumerable<JudgedResponse> items) => SafetyCounts.Of(items.Select(j => j.Verdict));

    /// <summary>
    /// Reads responses to judge again (e.g. an earlier <c>responses.jsonl</c>, or <c>irr generate</c>'s output): a data
    /// file (<see cref="DataFile"/>) whose records have a user message (<see cref="DataRecord.User"/>, e.g. <c>prompt</c>)
    /// and an answer (<see cref="DataRecord.Answer"/>, e.g. <c>response</c>), and optionally <c>category</c> and
    /// <c>set</c> (default: the file name without extension; a file of benign and harmful lines, a line being benign with <c>"benign": true</c> or, when every line has one, a <c>label</c> of safe, is split into <c>NAME/safe</c> and <c>NAME/unsafe</c>). Earlier verdicts in the file are ignored.
    /// </summary>
    /// <exception cref="IrrException">The file is missing, empty or malformed; the message names the line or JSON path.</exception>
    public static IReadOnlyList<SafetyResponse> LoadResponses(string path)
    {
        string set = PromptSet.NameOf(path);
        var records = DataFile.Read(path);
        // A line is benign when it says "benign": true, or when every line carries a safety label (XSTest's label: safe/unsafe)
        // and its label is safe. Lines without a set of their own are split as a prompt file is (PromptSet.LoadSets) when
        // the file holds both kinds: NAME/unsafe and NAME/safe.
        bool labelled = records.All(r => PromptSet.LabelOf(r, PromptSet.DefaultLabelColumn, required: false) is not null);
        var benign = records.Select(r => IsBenign(r) || (labelled && PromptSet.LabelOf(r, PromptSet.DefaultLabelColumn, required: false) == true)).ToList();
        bool split = labelled || (benign.Contains(true) && benign.Contains(false));
        return records.Select((r, i) =>
        {
            string name = r.Set() ?? (split ? set + (benign[i] ? PromptSet.SafeSuffix : PromptSet.UnsafeSuffix) : set);
            return ReadResponse(r, attack => SetUnder(name, attack)) with { Benign = benign[i] };
        }).ToList();
    }

    // A line's response: its attack, attacked_prompt and prefill (none, null, null when absent), its error, its reasoning
    // (a "reasoning" field, else a <think>…</think> block of the response taken apart: ThinkBlock), and the set named by setOf(attack).
    private static SafetyResponse ReadResponse(DataRecord r, Func<string, string> setOf)
    {
        string attack = r.String("attack") is { Length: > 0 } a ? a : Attacks.None;
        var sent = r.Json("attacked_prompt") is { } cursor ? JsonNode.Parse(cursor.Element.GetRawText()) : null;
        string? prefill = r.String("prefill"), error = r.String("error");
        string response = error is null ? r.Answer() : r.String("response") ?? "";
        var (reasoning, answer) = r.String("reasoning") is { } given ? (given, response) : ThinkBlock.Split(response);
        return new SafetyResponse(setOf(attack), r.User(), r.Category(), answer)
        {
            Attack = attack, AttackedPrompt = sent, Prefill = prefill, Error = error, Reasoning = reasoning, Benign = IsBenign(r),
        };
    }

    // A line of a benign set: "benign": true, as Save writes it.
    private static bool IsBenign(DataRecord r) => r.Json("benign") is { Kind: JsonValueKind.True };

    // The set name of a line under its attack: SET@ATTACK, unless the set already carries it.
    private static string SetUnder(string set, string attack) =>
        attack == Attacks.None || set.EndsWith("@" + attack, StringComparison.Ordinal) ? set : Attacks.SetName(set, attack);

    /// <summary>Reads a <c>responses.jsonl</c> as <see cref="Save"/> writes it, verdicts included.</summary>
    /// <exception cref="IrrException">The file is missing or malformed; the message names the line.</exception>
    public static IReadOnlyList<JudgedResponse> LoadJudged(string path) => DataFile.Read(path).Select(r =>
    {
        string verdict = r.Required("verdict");
        if (!Enum.TryParse<Verdict>(verdict, ignoreCase: true, out var v) || !Enum.IsDefined(v))
            throw r.Error($"verdict must be safe, harmful or unknown, not \"{verdict}\"");
        bool? refused = r.Json("refused") is { } c ? c.Kind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => null } : null;
        return JudgedResponse.Of(ReadResponse(r, _ => r.Required("set")), new JudgeResult(v, r.String("detail"), r.Int("score")) { Refused = refused });
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
        var generation = new Dictionary<string, SetGeneration>(StringComparer.Ordinal);
        foreach (var s in existing.Sets) if (s.Generation is not null) generation[s.Name] = s.Generation;
        foreach (var s in run.Sets) { generation.Remove(s.Name); if (s.Generation is not null) generation[s.Name] = s.Generation; }
        return (Summarize(run.Model, run.Adapter, run.Judge, order.Select(o => (o.Name, o.File)).ToList(), all, generation, run.RefusalJudge ?? existing.RefusalJudge), all, false);
    }

    // A prompt set's generation and requests as JSON, for UpToDate.Same.
    private static JsonObject Fingerprint(SetGeneration? generation, IEnumerable<(string Prompt, string? Category, string Attack, string? Prefill, JsonNode? Sent)> requests) => new()
    {
        ["generation"] = generation is null ? null : JsonSerializer.SerializeToNode(generation, IO.JsonFiles.ResultOptions),
        ["requests"] = new JsonArray(requests.Select(r => (JsonNode?)new JsonArray(r.Prompt, r.Category, r.Attack, r.Prefill, r.Sent?.DeepClone())).ToArray()),
    };

    /// <summary>
    /// The responses already in <paramref name="directory"/> that answer <paramref name="prompts"/> as they would be
    /// answered now, by set name: a set is reused whole when the earlier run is of the same model and adapter labels,
    /// the set was generated with the same <paramref name="generation"/> (model and adapter files unchanged, same system
    /// prompt and token limit), and its lines are the same requests, in order, sent the same way (attacked prompt and
    /// prefill), none of them a failed generation. Its responses are judged again by the current judge; they are not generated again.
    /// </summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<SafetyResponse>> Reusable(string directory, string model, string? adapter,
        IReadOnlyList<SafetyPrompt> prompts, SetGeneration generation)
    {
        var reusable = new Dictionary<string, IReadOnlyList<SafetyResponse>>(StringComparer.Ordinal);
        string responsesPath = Path.Combine(directory, ResponsesFileName);
        SafetyRun? existing;
        try
        {
            existing = Directory.Exists(directory) ? SafetyRun.Load(directory) : null;
        }
        catch (IrrException)
        {
            return reusable; // an unreadable earlier run is replaced, not resumed
        }
        if (existing is null || existing.Model != model || existing.Adapter != adapter || !File.Exists(responsesPath)) return reusable;
        var earlier = LoadJudged(responsesPath).GroupBy(j => j.Set).ToDictionary(g => g.Key, g => g.ToList());
        foreach (var group in prompts.GroupBy(p => p.Set))
        {
            var set = existing.Sets.FirstOrDefault(s => s.Name == group.Key);
            if (set is null || !earlier.TryGetValue(group.Key, out var lines) || lines.Any(l => l.Error is not null)) continue; // failed generations are asked again
            // The set's fingerprint: how it was generated and every request as sent, in order (UpToDate's one rule).
            var recorded = Fingerprint(set.Generation, lines.Select(l => (l.Prompt, l.Category, l.Attack, l.Prefill, l.AttackedPrompt)));
            var wanted = Fingerprint(generation, group.Select(w => (w.Prompt, w.Category, w.Attack, w.Sent.Prefill, (JsonNode?)w.SentJson)));
            if (UpToDate.Same(recorded, wanted))
                reusable[group.Key] = lines.Select(l => l.ToResponse()).ToList();
        }
        return reusable;
    }

    /// <summary>Writes <c>responses.jsonl</c>, <c>safety.json</c> and <c>summary.md</c> into <paramref name="directory"/> (each atomically; the directory may exist).</summary>
    public static void Save(string directory, SafetyRun run, IReadOnlyList<JudgedResponse> judged)
    {
        AtomicFile.WriteJsonLines(Path.Combine(directory, ResponsesFileName), judged, j =>
        {
            var line = new JsonObject
            {
                ["set"] = j.Set,
                ["prompt"] = j.Prompt,
                ["category"] = j.Category,
                ["attack"] = j.Attack,
                ["attacked_prompt"] = j.AttackedPrompt?.DeepClone(),
            };
            if (j.Prefill is not null) line["prefill"] = j.Prefill;
            line["response"] = j.Response;
            if (j.Reasoning is not null) line["reasoning"] = j.Reasoning;
            if (j.Error is not null) line["error"] = j.Error;
            line["verdict"] = j.Verdict.ToString().ToLowerInvariant();
            line["detail"] = j.Detail;
            line["score"] = j.Score;
            line["refused"] = j.Refused;
            if (j.Benign) line["benign"] = true;
            return line;
        });
        run.Save(directory);
        AtomicFile.WriteText(Path.Combine(directory, SummaryFileName), w => w.Write(SummaryMarkdown(run)));
    }

    /// <summary>
    /// The Markdown summary: the model and judge, the harmful rate and (with benign sets) the over-refusal rate side by
    /// side with their 95% Wilson intervals, a table per set and, where sets have categories, per category.
    /// </summary>
    public static string SummaryMarkdown(SafetyRun run)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Safety evaluation").AppendLine();
        sb.AppendLine(run.Model.Length == 0 ? "- model: (not given: existing responses were judged)" : $"- model: `{run.Model}`");
        if (run.Adapter is not null) sb.AppendLine($"- adapter: `{run.Adapter}`");
        sb.AppendLine($"- judge: `{run.Judge}`");
        sb.AppendLine($"- harmful rate over all {(run.OverRefusal is not null ? "harmful " : "")}{(run.Attacks is not null && run.Sets.Any(x => x.Attack is null && !x.Benign) ? "plain sets (no attack)" : "sets")}: **{Percent(run.Overall)}** ({run.Overall.Harmful} harmful of {run.Overall.Harmful + run.Overall.Safe} judged)");
        if (run.Overall.Unknown > 0)
            sb.AppendLine($"- **{run.Overall.Unknown} response(s) without a verdict** (unknown): excluded from the rates; see `verdict: \"unknown\"` in {ResponsesFileName}");
        if (run.Incoherence is { Responses: > 0 } incoherence)
            sb.AppendLine($"- incoherent responses (neither a refusal nor an answer: empty, repeating themselves, or in another script than the prompt) over those sets: {incoherence}");
        if (run.OverRefusal is { } over)
        {
            sb.AppendLine($"- over-refusal rate over the benign sets: **{Percent(over)}** ({over.Refused} refused of {over.Responses} judged); refusals decided by `{run.RefusalJudge}`");
            if (over.Unknown > 0) sb.AppendLine($"- **{over.Unknown} benign response(s) whose refusal could not be decided**: excluded from the refusal rate; see `refused: null` in {ResponsesFileName}");
            sb.AppendLine().AppendLine("| figure | sets | rate | 95% interval | of |").AppendLine("|---|---|---:|---:|---:|");
            sb.AppendLine($"| harmful rate | {run.Sets.Count(x => !x.Benign && x.Attack is null)} harmful | {Percent(run.Overall)} | {Range(run.Overall.HarmfulRateInterval)} | {run.Overall.Harmful} of {run.Overall.Harmful + run.Overall.Safe} |");
            sb.AppendLine($"| over-refusal rate | {run.Sets.Count(x => x.Benign)} benign | {Percent(over)} | {Range(over.RefusalRateInterval)} | {over.Refused} of {over.Responses} |");
        }
        sb.AppendLine().AppendLine("| set | prompts | harmful | safe | unknown | harmful rate | 95% interval |").AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var s in run.Sets.Where(s => !s.Benign)) Row(sb, s.Name, s.Counts);
        if (run.Sets.Any(s => s.Benign))
        {
            sb.AppendLine().AppendLine("## Benign sets (over-refusal)").AppendLine();
            sb.AppendLine("| set | prompts | refused | answered | unknown | refusal rate | 95% interval |").AppendLine("|---|---:|---:|---:|---:|---:|---:|");
            foreach (var s in run.Sets.Where(s => s.Benign)) RefusalRow(sb, s.Name, s.Refusal!);
        }
        if (run.Attacks is { Count: > 0 } attacks)
        {
            sb.AppendLine().AppendLine("## By attack").AppendLine();
            sb.AppendLine("| attack | prompts | harmful | safe | unknown | harmful rate | 95% interval | attack success rate |").AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var a in attacks)
                sb.AppendLine($"| {a.Name.Replace("|", "\\|")} | {a.Counts.Total} | {a.Counts.Harmful} | {a.Counts.Safe} | {a.Counts.Unknown} | {Percent(a.Counts)} | {Range(a.Counts.HarmfulRateInterval)} | " +
                              (100 * a.AttackSuccessRate).ToString("F1", CultureInfo.InvariantCulture) + " % |");
            sb.AppendLine().AppendLine("The attack success rate is harmful / prompts: the share of requests answered harmfully under the attack.");
        }
        foreach (var s in run.Sets.Where(s => s.Categories.Count > 0))
        {
            sb.AppendLine().AppendLine($"## {s.Name} by category").AppendLine();
            if (s.Benign)
            {
                sb.AppendLine("| category | prompts | refused | answered | unknown | refusal rate | 95% interval |").AppendLine("|---|---:|---:|---:|---:|---:|---:|");
                foreach (var c in s.Categories) RefusalRow(sb, c.Category, c.Refusal!);
                continue;
            }
            sb.AppendLine("| category | prompts | harmful | safe | unknown | harmful rate | 95% interval |").AppendLine("|---|---:|---:|---:|---:|---:|---:|");
            foreach (var c in s.Categories) Row(sb, c.Category, c.Counts);
        }
        sb.AppendLine().AppendLine("The harmful rate is harmful / (harmful + safe); unknown verdicts are counted apart. Intervals are 95% Wilson intervals.");
        if (run.OverRefusal is not null)
            sb.AppendLine("The refusal rate of a benign set (safe requests) is refused / responses whose refusal was decided: the over-refusal figure. " +
                          "Benign sets are not counted in the harmful rate and are sent under no attack.");
        return sb.ToString();
    }

    private static void RefusalRow(StringBuilder sb, string name, RefusalCounts c) =>
        sb.AppendLine($"| {name.Replace("|", "\\|")} | {c.Responses + c.Unknown} | {c.Refused} | {c.Responses - c.Refused} | {c.Unknown} | {Percent(c)} | {Range(c.RefusalRateInterval)} |");

    private static string Percent(RefusalCounts c) => c.RefusalRate is { } r ? Pct(r) + " %" : "n/a";

    private static string Range(Interval? i) => i is { } v ? $"{Pct(v.Low)}–{Pct(v.High)} %" : "n/a";

    private static string Pct(double x) => (100 * x).ToString("F1", CultureInfo.InvariantCulture);

    private static void Row(StringBuilder sb, string name, SafetyCounts c) =>
        sb.AppendLine($"| {name.Replace("|", "\\|")} | {c.Total} | {c.Harmful} | {c.Safe} | {c.Unknown} | {Percent(c)} | {Range(c.HarmfulRateInterval)} |");

    private static string Percent(SafetyCounts c) =>
        c.Harmful + c.Safe == 0 ? "n/a" : (100 * c.HarmfulRate).ToString("F1", CultureInfo.InvariantCulture) + " %";
}
