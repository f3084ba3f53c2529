using System.Text.Json;
using System.Text.Json.Nodes;
using Irr.Data;
using Irr.Model;
using Irr.Text;
using Irr.IO;

namespace Irr.Eval;

/// <summary>One task example.</summary>
/// <param name="User">The user message (for multiple choice: the question followed by "A. …\nB. …").</param>
/// <param name="Gold">The reference answer (for multiple choice: the letter).</param>
/// <param name="Choices">The number of options of a multiple-choice example, else 0.</param>
public sealed record TaskExample(string User, string Gold, int Choices = 0)
{
    /// <summary>A conversational record's prompt (<see cref="Conversation.Prompt"/>: a system message, few-shot turns, the last user message), or null: [system?, <see cref="User"/>].</summary>
    public IReadOnlyList<ChatMessage>? Turns { get; init; }

    /// <summary>
    /// Reads task data (<see cref="DataFile"/>): any record with a user message (<see cref="DataRecord.User"/>) and an
    /// answer (<see cref="DataRecord.Answer"/>: <c>output</c>, <c>response</c> or <c>answer</c>), e.g. Alpaca
    /// {instruction, input, output}, {prompt, response}, GSM8K's {question, answer} (the answer ends with
    /// <c>#### 42</c>); and multiple choice {question, choices: [...], answer: "B" or a 0-based index}.
    /// </summary>
    /// <exception cref="IrrException">The file is missing, empty or malformed; the message names the line or JSON path.</exception>
    public static IReadOnlyList<TaskExample> Load(string path) => DataFile.Read(path).Select(Of).ToList();

    /// <summary>The task view of one record.</summary>
    /// <exception cref="IrrException">The record has no user message or no answer, or its choices or answer are malformed.</exception>
    public static TaskExample Of(DataRecord record)
    {
        if (record.Conversation() is { } conversation)
            return new TaskExample(conversation.Prompt[^1].Content, record.Answer()) { Turns = conversation.Prompt };
        if (record.Json("choices") is not { } choices) return new TaskExample(record.User(), record.Answer(orAnswer: true));
        var options = choices.Items().Select(c => c.AsString()).ToList();
        if (options.Count is < 2 or > 26) throw choices.Error($"expected 2 to 26 choices, found {options.Count}");
        string question = record.User();
        var answer = record.Json("answer") ?? throw record.Error("missing \"answer\"");
        int index = answer.Kind == JsonValueKind.Number ? answer.AsInt() : TaskMetrics.ExtractChoice(answer.AsString(), options.Count) is { } letter ? letter - 'A' : -1;
        if (index < 0 || index >= options.Count) throw answer.Error($"the answer must be a letter A–{(char)('A' + options.Count - 1)} or an index 0–{options.Count - 1}");
        string user = question + "\n" + string.Join("\n", options.Select((o, i) => $"{(char)('A' + i)}. {o}"));
        return new TaskExample(user, ((char)('A' + index)).ToString(), options.Count);
    }
}

/// <summary>One scored prediction: a line of <c>predictions.jsonl</c>.</summary>
/// <param name="Index">The example's position in the data.</param>
/// <param name="Prompt">The user message.</param>
/// <param name="Gold">The reference answer.</param>
/// <param name="Response">The model's response.</param>
/// <param name="Extracted">What the metric read from the response (number, letter, normalized text), or null.</param>
/// <param name="Correct">Whether it counts as correct.</param>
public sealed record TaskPrediction(int Index, string Prompt, string Gold, string Response, string? Extracted, bool Correct)
{
    /// <summary>Why the response could not be generated (<see cref="ChatResponse.Error"/>); such a prediction is incorrect.</summary>
    public string? Error { get; init; }

    /// <summary>A thinking model's reasoning, apart from <c>Response</c> (the answer that is scored: <see cref="ChatResponse.Parts"/>), or null.</summary>
    public string? Reasoning { get; init; }
}

/// <summary><c>irr eval task</c> as a library: greedy answers to task examples, scored with a <see cref="TaskMetric"/>.</summary>
public static class TaskEvaluation
{
    /// <summary>The predictions file inside a run directory.</summary>
    public const string PredictionsFileName = "predictions.jsonl";

    /// <summary>
    /// Generates an answer to every example and scores it. <paramref name="progress"/> gets the tokens produced per decoding
    /// step. With a generation cache (the commands' internal overload), answers it holds are not generated again and new ones are added to it as they come.
    /// </summary>
    public static IReadOnlyList<TaskPrediction> Run(Transformer model, PretrainedTokenizer tokenizer, IReadOnlyList<TaskExample> examples, TaskMetric metric,
        string? systemPrompt, GenerationOptions options, Action<int>? progress = null) => Run(model, tokenizer, examples, metric, systemPrompt, options, progress, null);

    /// <summary>As <see cref="Run(Transformer, PretrainedTokenizer, IReadOnlyList{TaskExample}, TaskMetric, string?, GenerationOptions, Action{int}?)"/>, with a generation cache: answers it holds are not generated again, and new ones are appended as their batch ends.</summary>
    internal static IReadOnlyList<TaskPrediction> Run(Transformer model, PretrainedTokenizer tokenizer, IReadOnlyList<TaskExample> examples, TaskMetric metric,
        string? systemPrompt, GenerationOptions options, Action<int>? progress, GenerationCache? cache)
    {
        var answers = ChatGeneration.Respond(model, tokenizer, Requests(examples, systemPrompt), options, progress, cache);
        return Score(examples, answers, metric);
    }

    /// <summary>What is sent for each example: [system?, user], or a conversational example's turns (<see cref="Conversation.WithSystem"/>).</summary>
    public static IReadOnlyList<ChatRequest> Requests(IReadOnlyList<TaskExample> examples, string? systemPrompt) =>
        examples.Select(e => new ChatRequest(e.Turns is null ? ChatPrompt.Messages(e.User, systemPrompt) : Conversation.WithSystem(e.Turns, systemPrompt))).ToList();

    /// <summary>
    /// Scores generated answers (one per example, in order): a thinking model's answer without its reasoning, which is kept
    /// in <see cref="TaskPrediction.Reasoning"/> (<see cref="ChatResponse.Parts"/>); a failed generation is incorrect and keeps its <see cref="TaskPrediction.Error"/>.
    /// </summary>
    public static IReadOnlyList<TaskPrediction> Score(IReadOnlyList<TaskExample> examples, IReadOnlyList<ChatResponse> answers, TaskMetric metric) =>
        Score(examples, answers.Select(a => a.Parts.Answer).ToList(), metric)
            .Select((p, i) => answers[i].Error is { } error ? p with { Extracted = null, Correct = false, Error = error } : p with { Reasoning = answers[i].Parts.Reasoning })
            .ToList();

    /// <summary>Scores given responses (one per example, in order).</summary>
    public static IReadOnlyList<TaskPrediction> Score(IReadOnlyList<TaskExample> examples, IReadOnlyList<string> responses, TaskMetric metric) =>
        examples.Select((e, i) =>
        {
            int choices = e.Choices > 0 ? e.Choices : 4;
            return new TaskPrediction(i, e.User, e.Gold, responses[i], TaskMetrics.Extract(metric, responses[i], choices),
                TaskMetrics.IsCorrect(metric, responses[i], e.Gold, choices));
        }).ToList();

    /// <summary>
    /// The outcomes recorded in a <c>predictions.jsonl</c> (<see cref="Save"/>): per line, the example's index and whether it
    /// was answered correctly, in file order; blank lines are skipped. Read by <c>irr report</c> (paired differences) and
    /// <c>irr sweep</c> (the points' intervals).
    /// </summary>
    /// <exception cref="IrrException">A line is not JSON, or lacks an integer <c>index</c> or a boolean <c>correct</c> ("<c>FILE: line N: …</c>").</exception>
    public static IReadOnlyList<(int Index, bool Correct)> LoadOutcomes(string path)
    {
        var outcomes = new List<(int, bool)>();
        int number = 0;
        foreach (string line in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string where = $"{path}: line {number}";
            using var doc = JsonCursor.ParseLine(line, where);
            var root = JsonCursor.Root(doc, where);
            outcomes.Add((root.Required("index").AsInt(), root.Required("correct").AsBool()));
        }
        return outcomes;
    }

    /// <summary>Writes <c>predictions.jsonl</c> and <c>task.json</c> into <paramref name="directory"/> (each atomically; the directory may exist).</summary>
    public static void Save(string directory, TaskRun run, IReadOnlyList<TaskPrediction> predictions)
    {
        AtomicFile.WriteJsonLines(Path.Combine(directory, PredictionsFileName), predictions, p =>
        {
            var line = new JsonObject
            {
                ["index"] = p.Index,
                ["prompt"] = p.Prompt,
                ["gold"] = p.Gold,
                ["response"] = p.Response,
                ["extracted"] = p.Extracted,
                ["correct"] = p.Correct,
            };
            if (p.Reasoning is not null) line["reasoning"] = p.Reasoning;
            if (p.Error is not null) line["error"] = p.Error;
            return line;
        });
        run.Save(directory);
    }
}
