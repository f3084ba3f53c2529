using System.Globalization;
using System.Text.Json;
using Irr.IO;

namespace Irr.Data;

/// <summary>
/// One record of a data file (<see cref="DataFile"/>): a JSON value (an array item, a JSONL line, a leaf of a CatQA
/// tree), a CSV row, or a paragraph of a .txt file. It knows its place, which every error about it names
/// (<c>data.jsonl line 4: …</c>, <c>data.json: [3].prompt: …</c>, <c>catqa.json: Illegal Activity.Drug[2]: …</c>,
/// <c>data.csv line 7: goal: …</c>), and it holds the field rules every command shares: what the user message,
/// the answer, the text, the category and the set of a record are.
/// </summary>
public sealed class DataRecord
{
    /// <summary>The fields that hold the user message, in the order they are looked for.</summary>
    public static IReadOnlyList<string> UserFields { get; } = ["prompt", "instruction", "question", "goal", "behavior"];

    /// <summary>The fields that hold the answer, in the order they are looked for (<c>answer</c> only where <see cref="Answer"/> is asked for it).</summary>
    public static IReadOnlyList<string> AnswerFields { get; } = ["output", "response", "completion", "answer"];

    /// <summary>The fields that hold a whole conversation: <c>messages</c> (TRL, axolotl, LlamaFactory, OpenAI) and ShareGPT's <c>conversations</c>.</summary>
    public static IReadOnlyList<string> ConversationFields { get; } = ["messages", "conversations"];

    /// <summary>What HarmBench puts between a contextual behaviour's context and the behaviour (baselines/direct_request/direct_request.py, DirectRequest.generate_test_cases).</summary>
    public const string ContextSeparator = "\n\n---\n\n";

    private readonly JsonCursor? json;
    private readonly CsvHeader? header;
    private readonly IReadOnlyList<string>? cells;
    private readonly string? paragraph;
    private readonly string? treeCategory;

    private DataRecord(string where, JsonCursor? json = null, CsvHeader? header = null, IReadOnlyList<string>? cells = null, string? paragraph = null, string? treeCategory = null)
    {
        Where = where;
        this.json = json;
        this.header = header;
        this.cells = cells;
        this.paragraph = paragraph;
        this.treeCategory = treeCategory;
    }

    internal static DataRecord FromJson(JsonCursor item, string? treeCategory = null) => new(item.Where, json: item, treeCategory: treeCategory);

    internal static DataRecord FromCsv(CsvHeader header, Csv.Row row) => new($"{header.File} line {row.Line}", header: header, cells: row.Fields);

    internal static DataRecord FromText(string text, string where) => new(where, paragraph: text);

    /// <summary>Where the record is, for messages: <c>data.jsonl line 4</c>, <c>data.json: [3]</c>, <c>data.csv line 7</c>.</summary>
    public string Where { get; }

    /// <summary>An error about this record: <c>"{Where}: {problem}"</c>, control characters (from the file's keys and text) escaped.</summary>
    public IrrException Error(string problem) => new(Diagnostics.Escape($"{Where}: {problem}"));

    // A bare string: a JSON string or a paragraph.
    private string? Bare => paragraph ?? (json is { Kind: JsonValueKind.String } j ? j.AsString() : null);

    private bool IsObject => header is not null || json is { Kind: JsonValueKind.Object };

    private string Describe() => json?.Describe() ?? (paragraph is not null ? "a paragraph of text" : "a CSV row");

    /// <summary>
    /// The user message: a bare string as it is; else <c>prompt</c> (a string, or an object {instruction, input}, which
    /// becomes <c>instruction + "\n" + input + "\n"</c>, IRR-SPEC "Details"); else <c>instruction</c>, followed by
    /// <c>"\n" + input</c> when input is not empty (IRR-SPEC "Formatting"; Dolly's <c>context</c> stands in for a missing
    /// input, as Dolly's own prompt puts it in the input's place); else Salad-Data's attack-enhanced <c>augq</c>; else <c>question</c>, <c>goal</c> or <c>behavior</c>;
    /// else SORRY-Bench's <c>turns</c> (one string). A missing or null field is skipped; a missing or null <c>input</c> is empty.
    /// HarmBench's contextual behaviours are sent as <c>context + "\n\n---\n\n" + behavior</c>, as HarmBench's own code does:
    /// <c>ContextString</c> (its CSV), or <c>context</c> beside <c>behavior</c>, <c>goal</c> or a <c>prompt</c> string, when not empty.
    /// A conversation (<see cref="Conversation"/>) gives its one user message, when it is only that (and an answer).
    /// Field names are matched case-insensitively (an exact match first).
    /// </summary>
    /// <exception cref="IrrException">The record has none of these fields, or one is not a string, or it is a conversation of more than one user turn or with a system message.</exception>
    public string User()
    {
        if (Bare is { } text) return text;
        if (!IsObject) throw Error($"expected a string or an object with {Listed(UserFields)}, found {Describe()}");
        if (Conversation() is { } conversation)
        {
            if (conversation.Prompt is not [{ Role: "user" } single])
                throw Error("a conversation with a system message or more than one turn before the answer is read as training data only " +
                            "(train, fisher, realign --calibration, score); here give one user message (and the system prompt with --system-prompt)");
            return single.Content;
        }
        return PlainUser();
    }

    // The user message of a record that is not a conversation.
    private string PlainUser()
    {
        string? contextual = null; // the field whose value HarmBench's context goes before
        string user;
        if (Get("prompt") is { } prompt)
        {
            if (prompt.Json is { Kind: JsonValueKind.Object } inner) return inner.Required("instruction").AsString() + "\n" + (inner.String("input") ?? "") + "\n";
            user = prompt.AsString("a string or an object {instruction, input}");
            contextual = "prompt";
        }
        else if (Get("instruction") is { } instruction)
        {
            user = instruction.AsString();
            string input = String("input") ?? "";
            if (input.Length == 0) input = String("context") ?? ""; // Dolly: {instruction, context, response}
            user = input.Length == 0 ? user : user + "\n" + input;
        }
        else if (Get("augq") is { } augq)
        {
            user = augq.AsString(); // Salad-Data's attack_enhanced_set: the attack-enhanced question, beside the base question
        }
        else if (UserFields.Skip(2).Select(name => (name, field: Get(name))).FirstOrDefault(f => f.field is not null) is { field: { } field } found)
        {
            user = field.AsString();
            contextual = found.name is "goal" or "behavior" ? found.name : null;
        }
        else if (Get("turns") is { Json: { } turns })
        {
            // SORRY-Bench: {question_id, category, turns: [prompt], prompt_style}; its answers are asked turn by turn.
            var items = turns.Kind == JsonValueKind.Array ? turns.Items().ToList() : [];
            if (items.Count != 1) throw turns.Error($"expected a list of one prompt (SORRY-Bench's turns), found {turns.Describe()}{(items.Count > 1 ? $" of {items.Count} turns" : "")}");
            return items[0].Kind == JsonValueKind.String ? items[0].AsString() : throw items[0].Error($"expected a string, found {items[0].Describe()}");
        }
        else
        {
            throw Missing(UserFields);
        }
        string context = String("ContextString") ?? (contextual is not null ? String("context") : null) ?? "";
        return context.Length == 0 ? user : context + ContextSeparator + user;
    }

    /// <summary>
    /// The conversation of a conversational record, or null for any other record: <c>messages</c> (a list of
    /// <c>{role, content}</c>, roles system, user, assistant), ShareGPT's <c>conversations</c> (<c>{from, value}</c>, from
    /// system, human, gpt; or <c>{role, content}</c>), or TRL's conversational prompt-completion <c>{prompt: [messages],
    /// completion: [one assistant message]}</c>, or LlamaFactory's alpaca record with <c>system</c> or <c>history</c> (the system
    /// turn, the history's [user, assistant] pairs, the Alpaca user message, the output). When the last message is the assistant's, it is the answer and the messages
    /// before it the prompt, as TRL's prompt-completion records are (only the completion carries labels); otherwise there is
    /// no answer. A content given as a list of parts (<c>[{"type": "text", "text": …}]</c>) is the texts of its parts joined with "\n" (as vLLM).
    /// </summary>
    /// <exception cref="IrrException">The messages are malformed: not objects, an unknown role, a system message after the first, no user message before the answer, a completion that is not one assistant message.</exception>
    public Conversation? Conversation()
    {
        if (json is not { Kind: JsonValueKind.Object }) return null;
        List<ChatTurn> turns;
        if (ConversationFields.Select(Get).FirstOrDefault(f => f is not null) is { Json: { } list })
        {
            turns = Turns(list);
        }
        else if (Get("prompt") is { Json: { Kind: JsonValueKind.Array } prompt })
        {
            turns = Turns(prompt);
            if (Get("completion") is { Json: { } completion })
            {
                var answer = Turns(completion);
                if (answer is not [{ Role: "assistant" }])
                    throw completion.Error("expected one assistant message (the answer of a conversational prompt-completion record)");
                turns.AddRange(answer);
            }
        }
        else if (Get("instruction") is not null && (Get("history") is not null || Get("system") is not null))
        {
            // LlamaFactory's alpaca format: {system?, history?: [[user, assistant], …], instruction, input, output}
            // (AlpacaDatasetConverter: the system, the history's turns, then instruction + "\n" + input and the output).
            turns = [];
            if (Get("system") is { Json: { } system } && (system.Kind == JsonValueKind.String ? system.AsString() : throw system.Error($"expected a string, found {system.Describe()}")) is { Length: > 0 } text)
                turns.Add(new ChatTurn("system", text, system)); // an empty system is none, as LlamaFactory reads it
            if (Get("history") is { Json: { } history })
            {
                if (history.Kind != JsonValueKind.Array) throw history.Error($"expected a list of [user, assistant] pairs, found {history.Describe()}");
                foreach (var pair in history.Items())
                {
                    var two = pair.Kind == JsonValueKind.Array ? pair.Items().ToList() : [];
                    if (two.Count != 2 || two.Any(t => t.Kind != JsonValueKind.String)) throw pair.Error($"expected a pair [user, assistant] of strings, found {pair.Describe()}");
                    turns.Add(new ChatTurn("user", two[0].AsString(), pair));
                    turns.Add(new ChatTurn("assistant", two[1].AsString(), pair));
                }
            }
            turns.Add(new ChatTurn("user", PlainUser(), json.Value));
            if (AnswerFields.Take(3).Select(Get).FirstOrDefault(f => f is not null) is { } output)
                turns.Add(new ChatTurn("assistant", output.AsString(), json.Value));
        }
        else
        {
            return null;
        }
        if (turns.Count == 0) throw Error("the conversation has no messages");
        for (int i = 1; i < turns.Count; i++)
            if (turns[i].Role == "system") throw turns[i].Error("a system message may only come first");
        string? reply = turns[^1].Role == "assistant" ? turns[^1].Content : null;
        var before = reply is null ? turns : turns[..^1];
        if (before.Count == 0 || before[^1].Role != "user")
            throw (before.Count == 0 ? turns[^1] : before[^1]).Error("the message before the answer (or the last message) must be the user's");
        return new Conversation(before.Select(t => new Text.ChatMessage(t.Role, t.Content)).ToList(), reply);
    }

    private readonly record struct ChatTurn(string Role, string Content, JsonCursor At)
    {
        public IrrException Error(string problem) => At.Error(problem);
    }

    // ShareGPT's speakers (FastChat, axolotl, LlamaFactory): human → user, gpt → assistant.
    private static string? Role(string name) => name switch
    {
        "system" => "system",
        "user" or "human" => "user",
        "assistant" or "gpt" => "assistant",
        _ => null,
    };

    private static List<ChatTurn> Turns(JsonCursor list)
    {
        if (list.Kind != JsonValueKind.Array) throw list.Error($"expected a list of messages, found {list.Describe()}");
        var turns = new List<ChatTurn>();
        foreach (var item in list.Items())
        {
            if (item.Kind != JsonValueKind.Object) throw item.Error($"expected a message {{role, content}}, found {item.Describe()}");
            bool shareGpt = item.Get("from") is not null;
            var speaker = item.GetNonNull(shareGpt ? "from" : "role") ?? throw item.Error($"missing \"{(shareGpt ? "from" : "role")}\"");
            string name = speaker.AsString();
            string role = Role(name) ?? throw speaker.Error($"the role \"{name}\" is not read (system, user or assistant{(shareGpt ? "; ShareGPT's system, human or gpt" : "")})");
            var content = item.GetNonNull(shareGpt ? "value" : "content") ?? throw item.Error($"missing \"{(shareGpt ? "value" : "content")}\"");
            turns.Add(new ChatTurn(role, Content(content), item));
        }
        return turns;
    }

    // A message's content: a string, or OpenAI's list of parts whose text parts are joined with "\n", as vLLM's chat API
    // does for a text-only chat template (vllm/entrypoints/chat_utils.py, _parse_chat_message_content_parts: "\n".join(texts)).
    private static string Content(JsonCursor content)
    {
        if (content.Kind == JsonValueKind.String) return content.AsString();
        if (content.Kind != JsonValueKind.Array) throw content.Error($"expected a string or a list of text parts, found {content.Describe()}");
        return string.Join("\n", content.Items().Select(part =>
            part.Kind == JsonValueKind.Object && part.String("type") == "text" && part.GetNonNull("text") is { } t ? t.AsString()
            : throw part.Error($"expected a text part {{\"type\": \"text\", \"text\": …}}, found {part.Describe()}")));
    }

    /// <summary>
    /// The answer: a conversation's last assistant message (<see cref="Conversation"/>); else <c>output</c>, else
    /// <c>response</c>, else <c>completion</c> (TRL's prompt-completion), else (when <paramref name="orAnswer"/>, for task data) <c>answer</c>.
    /// </summary>
    /// <exception cref="IrrException">The record is not an object or has none of these fields, or the field is not a string.</exception>
    public string Answer(bool orAnswer = false)
    {
        IReadOnlyList<string> names = orAnswer ? AnswerFields : [.. AnswerFields.Where(n => n != "answer")];
        if (!IsObject) throw Error($"expected an object with {Listed(names)}, found {Describe()}");
        if (Conversation() is { } conversation)
            return conversation.Answer ?? throw Error("the conversation does not end with an assistant message (the answer)");
        foreach (string name in names)
            if (Get(name) is { } field) return field.AsString();
        throw Missing(names);
    }

    /// <summary>
    /// Whether the record is language-modeling data (TRL's <c>{"text"}</c> format): an object with <c>text</c> and none of
    /// the user or answer fields.
    /// </summary>
    public bool IsTextOnly => IsObject && Get("text") is not null && UserFields.Concat(AnswerFields).Concat(ConversationFields).All(f => Get(f) is null);

    /// <summary>A text to score: a bare string as it is, else the <c>text</c> field.</summary>
    /// <exception cref="IrrException">The record is neither a string nor an object with <c>text</c>.</exception>
    public string Text()
    {
        if (Bare is { } text) return text;
        if (!IsObject) throw Error($"expected a string or an object with \"text\", found {Describe()}");
        return Required("text");
    }

    /// <summary>
    /// The category path: the CatQA tree's keys joined by "/", followed by the record's own <c>category</c> (or
    /// HarmBench's <c>SemanticCategory</c>, Salad-Data's <c>1-category</c>, or XSTest's <c>type</c> beside its <c>label</c>), trimmed; null when there is none. BeaverTails' <c>category</c>, an object of
    /// booleans (a struct in its parquet), gives the first name that is true, in field order (a record has one category).
    /// </summary>
    public string? Category()
    {
        string? own = !IsObject ? null
            : Json("category") is { Kind: JsonValueKind.Object } flags ? BeaverTailsCategory(flags)
            : String("category") ?? String("SemanticCategory") ?? String("1-category") ?? (Get("label") is not null ? String("type") : null);
        own = string.IsNullOrWhiteSpace(own) ? null : own.Trim();
        return (treeCategory, own) switch
        {
            (null, _) => own,
            (_, null) => treeCategory,
            _ => $"{treeCategory}/{own}",
        };
    }

    // BeaverTails: "category": {"animal_abuse": false, "violence,aiding_and_abetting,incitement": true, …}. A record is
    // counted in one category, and the names hold commas themselves, so the first name flagged true (in the object's, or
    // the parquet struct's, field order) is the category; a null flag (parquet) is false.
    private static string? BeaverTailsCategory(JsonCursor flags)
    {
        foreach (var (name, flag) in flags.Properties())
        {
            if (flag.Kind == JsonValueKind.True) return name;
            if (flag.Kind is not (JsonValueKind.False or JsonValueKind.Null)) throw flag.Error($"expected true or false, found {flag.Describe()}");
        }
        return null;
    }

    /// <summary>The prompt set the record belongs to (<c>set</c>), or null.</summary>
    public string? Set() => IsObject && String("set") is { } set && !string.IsNullOrWhiteSpace(set) ? set : null;

    /// <summary>An optional string field: null when the record has no such field (or it is JSON null).</summary>
    /// <exception cref="IrrException">The field is not a string.</exception>
    public string? String(string name) => Get(name)?.AsString();

    /// <summary>A string field the record must have.</summary>
    /// <exception cref="IrrException">The field is missing or not a string.</exception>
    public string Required(string name) => (Get(name) ?? throw Missing([name])).AsString();

    /// <summary>An optional integer field: null when the record has no such field (or it is JSON null).</summary>
    /// <exception cref="IrrException">The field is not an integer.</exception>
    public int? Int(string name) => Get(name) is not { } field ? null
        : field.Json is { } j ? j.AsInt()
        : int.TryParse(field.Cell, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value) ? value
        : throw field.Error($"expected an integer, found \"{field.Cell}\"");

    /// <summary>A field of a JSON record as JSON (a list, a number …), or null when absent, JSON null, or the record is not JSON.</summary>
    internal JsonCursor? Json(string name) => Get(name)?.Json;

    private IrrException Missing(IReadOnlyList<string> names) => header is not null
        ? new IrrException(Diagnostics.Escape($"{header.File} line {header.Line}: no {Listed(names)} column in the header ({string.Join(", ", header.Columns)})"))
        : Error($"missing {Listed(names)}");

    private static string Listed(IReadOnlyList<string> names) =>
        names.Count == 1 ? $"\"{names[0]}\"" : string.Join(", ", names.Take(names.Count - 1).Select(n => $"\"{n}\"")) + $" or \"{names[^1]}\"";

    // A field of an object record: present and not JSON null; for a CSV row, a column of the header.
    private Field? Get(string name)
    {
        if (json is { Kind: JsonValueKind.Object } j)
        {
            // Exactly, else case-insensitively (JailbreakBench's "Goal", HarmBench's "Behavior" in JSON as in their CSVs).
            JsonCursor? c = j.GetNonNull(name);
            if (c is null && j.Get(name) is null)
                foreach (var (key, value) in j.Properties())
                    if (key.Equals(name, StringComparison.OrdinalIgnoreCase) && !value.IsNull)
                    {
                        c = value;
                        break;
                    }
            return c is { } found ? new Field(found.Where, found, null) : null;
        }
        if (header is null) return null;
        int i = header.IndexOf(name);
        return i < 0 ? null : new Field($"{Where}: {header.Columns[i].Trim()}", null, cells![i]);
    }

    private readonly record struct Field(string Where, JsonCursor? Json, string? Cell)
    {
        public IrrException Error(string problem) => new($"{Where}: {problem}");

        public string AsString(string expected = "a string") => Json is not { } j ? Cell!
            : j.Kind == JsonValueKind.String ? j.AsString()
            : throw Error($"expected {expected}, found {j.Describe()}");
    }
}

/// <summary>A conversational record (<see cref="DataRecord.Conversation"/>): the messages of the prompt and the answer.</summary>
/// <param name="Prompt">The messages before the answer, the last one the user's; a system message only first.</param>
/// <param name="Answer">The last assistant message's content, or null when the conversation ends with the user.</param>
public sealed record Conversation(IReadOnlyList<Text.ChatMessage> Prompt, string? Answer)
{
    /// <summary>
    /// The messages a chat template renders for a prompt of <paramref name="turns"/> and a command's system prompt: the
    /// system prompt goes first unless the turns hold their own system message, which wins (the data's author chose it).
    /// </summary>
    public static IReadOnlyList<Text.ChatMessage> WithSystem(IReadOnlyList<Text.ChatMessage> turns, string? systemPrompt) =>
        systemPrompt is null || turns is [{ Role: "system" }, ..] ? turns : [new Text.ChatMessage("system", systemPrompt), .. turns];
}
