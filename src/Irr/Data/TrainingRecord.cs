namespace Irr.Data;

/// <summary>
/// One example of a data set (Fisher data, calibration data, training data): the user's content and the answer,
/// read per IRR-SPEC "Formatting" by <see cref="DataFile"/> (the containers) and <see cref="DataRecord"/> (the fields):
/// an Alpaca record <c>{instruction, input, output}</c>, a <c>{prompt, response}</c> record, or any record with a user
/// message and an answer.
/// A conversational record (<c>messages</c>, ShareGPT <c>conversations</c>, TRL's conversational prompt-completion;
/// <see cref="DataRecord.Conversation"/>) is its last assistant message as the answer and the messages before it as the
/// prompt (<see cref="Turns"/>).
/// </summary>
/// <param name="User">The user message (<see cref="DataRecord.User"/>): <c>instruction</c>, or <c>instruction + "\n" + input</c> when input is not empty; a conversation's last user message.</param>
/// <param name="Answer">The answer (<see cref="DataRecord.Answer"/>: <c>output</c>, <c>response</c> or <c>completion</c>; a conversation's last assistant message).</param>
public sealed record TrainingRecord(string User, string Answer)
{
    /// <summary>
    /// A conversational record's prompt: every message before the answer (a system message first, earlier user and
    /// assistant turns, the last user message), or null for a single-turn record (the prompt is then [system?, <see cref="User"/>]).
    /// </summary>
    public IReadOnlyList<Text.ChatMessage>? Turns { get; init; }

    /// <summary>
    /// The messages the chat template renders as the prompt: <see cref="Turns"/>, or [system?, <see cref="User"/>]. The
    /// system prompt <paramref name="systemPrompt"/> (a command's --system-prompt) goes first unless the record has its own
    /// system message, which wins (the data's author chose it).
    /// </summary>
    public IReadOnlyList<Text.ChatMessage> Messages(string? systemPrompt) =>
        Turns is null ? Text.ChatPrompt.Messages(User, systemPrompt) : Conversation.WithSystem(Turns, systemPrompt);

    /// <summary>Reads a data file (<see cref="DataFile"/>).</summary>
    /// <exception cref="IrrException">The file is missing, empty or a record is malformed; the message names the line or index.</exception>
    public static IReadOnlyList<TrainingRecord> Load(string path) => DataFile.Read(path).Select(Of).ToList();

    /// <summary>Reads records from the text of a data file; <paramref name="fileName"/> names it in errors and picks the container.</summary>
    /// <exception cref="IrrException">A record is malformed; the message names the line or index.</exception>
    public static IReadOnlyList<TrainingRecord> Parse(string text, string fileName) => DataFile.Parse(text, fileName).Select(Of).ToList();

    /// <summary>
    /// A language-modeling record (<c>{"text": …}</c>, TRL's format for base models): no prompt, the text is the answer,
    /// so every token is labelled. Only raw text (<c>--no-chat-template</c>) formats it; a chat template needs a prompt.
    /// </summary>
    public bool IsText { get; init; }

    /// <summary>Equal user, answer, turns and kind; where the record was read does not count.</summary>
    public bool Equals(TrainingRecord? other) =>
        other is not null && User == other.User && Answer == other.Answer && Equals(Turns, other.Turns) && IsText == other.IsText;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(User, Answer, Turns, IsText);

    /// <summary>Where the record is (<c>data.jsonl line 4</c>), for errors about its format (a chat template that cannot format a <see cref="IsText"/> record, raw text that cannot take a conversation).</summary>
    public string? Where { get; init; }

    /// <summary>The training view of one record: its user message and its answer; a <c>{"text"}</c> record's text (<see cref="IsText"/>).</summary>
    /// <exception cref="IrrException">The record has no user message or no answer.</exception>
    public static TrainingRecord Of(DataRecord record)
    {
        if (record.IsTextOnly) return new TrainingRecord("", record.Text()) { IsText = true, Where = record.Where };
        if (record.Conversation() is not { } conversation) return new(record.User(), record.Answer()) { Where = record.Where };
        return new(conversation.Prompt[^1].Content, record.Answer()) { Turns = conversation.Prompt, Where = record.Where };
    }
}
