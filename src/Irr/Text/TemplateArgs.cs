using System.Text.Json;
using Irr.Jobs;

namespace Irr.Text;

/// <summary>
/// Extra variables of a chat template (<c>--template-arg KEY=VALUE</c>, repeatable), as transformers'
/// <c>tokenizer.apply_chat_template(messages, **kwargs)</c> passes its keyword arguments into the template's context,
/// e.g. <c>enable_thinking=false</c> for Qwen3. A VALUE is JSON when it parses as JSON (<c>false</c>, <c>3</c>,
/// <c>"x"</c>, <c>[…]</c>, <c>{…}</c>), else the plain string. Source: transformers' <c>render_jinja_template</c>
/// (utils/chat_template_utils.py), which renders with <c>messages</c>, <c>tools</c>, <c>documents</c>,
/// <c>add_generation_prompt</c>, the special tokens and <c>**kwargs</c>.
/// </summary>
public sealed class TemplateArgs
{
    /// <summary>The option's key, as the command line (<c>--template-arg</c>) and a recipe name it.</summary>
    public const string Key = "template-arg";

    /// <summary>No extra variables.</summary>
    public static readonly TemplateArgs None = new([]);

    /// <summary>
    /// The variables the renderer sets itself (<see cref="ChatTemplate.Render(IEnumerable{ChatMessage}, bool, IReadOnlyDictionary{string, string?}?, JsonElement?, TemplateArgs?)"/>):
    /// the conversation, the generation prompt, tools and documents, the special tokens and transformers' template functions.
    /// </summary>
    public static readonly IReadOnlyList<string> Reserved =
    [
        "messages", "add_generation_prompt", "tools", "documents",
        "bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token", "additional_special_tokens",
        "raise_exception", "strftime_now",
    ];

    private readonly List<(string Name, JsonElement Value)> values;

    private TemplateArgs(List<(string Name, JsonElement Value)> values) => this.values = values;

    /// <summary>The variables in the order given: each name with its value as JSON.</summary>
    public IReadOnlyList<(string Name, JsonElement Value)> Values => values;

    /// <summary>Whether there are none.</summary>
    public bool IsEmpty => values.Count == 0;

    /// <summary>
    /// Parses <c>KEY=VALUE</c> items: KEY a Python identifier (a keyword argument's name) that is not one the renderer sets
    /// (<see cref="Reserved"/>) and not given twice; VALUE JSON when it parses, else the plain string. Python's
    /// <c>True</c>/<c>False</c>/<c>None</c> are refused (as plain strings they would be truthy text, not the flags meant).
    /// </summary>
    /// <exception cref="IrrException">An item is malformed: "<c>template-arg 'KEY=VALUE': why</c>".</exception>
    public static TemplateArgs Parse(IEnumerable<string> items)
    {
        var parsed = new List<(string, JsonElement)>();
        foreach (string item in items)
        {
            int eq = item.IndexOf('=', StringComparison.Ordinal);
            string name = eq < 0 ? item : item[..eq], text = eq < 0 ? "" : item[(eq + 1)..];
            string what = $"{Key} '{Diagnostics.Escape(item)}'";
            if (eq < 0) throw new IrrException($"{what}: expected KEY=VALUE (e.g. enable_thinking=false)");
            if (!IsIdentifier(name)) throw new IrrException($"{what}: KEY must be a Python identifier (letters, digits, _), as a keyword argument of apply_chat_template");
            if (Reserved.Contains(name))
                throw new IrrException($"{what}: {name} is set by irr itself when it renders the template ({string.Join(", ", Reserved)}); it cannot be a {Key}");
            if (parsed.Exists(p => p.Item1 == name)) throw new IrrException($"{what}: {name} is given twice");
            if (text is "True" or "False" or "None")
                throw new IrrException($"{what}: VALUE is JSON ({text.ToLowerInvariant().Replace("none", "null", StringComparison.Ordinal)}), not Python; for the string write \"{text}\"");
            parsed.Add((name, Value(text)));
        }
        return new TemplateArgs(parsed);
    }

    /// <summary>The items as the option takes them, each value as compact JSON (<c>enable_thinking=false</c>, <c>name="x"</c>).</summary>
    public IReadOnlyList<string> ToItems() => values.Select(v => $"{v.Name}={v.Value.GetRawText()}").ToList();

    /// <summary>The variables as a JSON object (vLLM's <c>chat_template_kwargs</c> of a chat-completions request).</summary>
    public System.Text.Json.Nodes.JsonObject ToJsonObject()
    {
        var json = new System.Text.Json.Nodes.JsonObject();
        foreach (var (name, value) in values) json[name] = System.Text.Json.Nodes.JsonNode.Parse(value.GetRawText());
        return json;
    }

    // JSON when the text parses as one JSON value, else the string itself (as a JSON string).
    private static JsonElement Value(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 64 });
            return doc.RootElement.Clone();
        }
        catch (JsonException)
        {
            return JsonSerializer.SerializeToElement(text);
        }
    }

    private static bool IsIdentifier(string name) =>
        name.Length > 0 && (char.IsAsciiLetter(name[0]) || name[0] == '_') && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    /// <summary>The parser of the option: validates the items and gives them back with each value as compact JSON (<see cref="ToItems"/>).</summary>
    public sealed class OptionParser : IOptionParser
    {
        /// <inheritdoc/>
        public object? Parse(IReadOnlyList<string> values, string key) => TemplateArgs.Parse(values).ToItems().ToArray();
    }
}

/// <summary>
/// The chat-template options of every command that renders a chat template (generate, eval safety/task, score, train,
/// fisher, realign, sweep, chat-format): declared once here and held by each job as <c>[Options]</c>.
/// </summary>
public sealed record ChatTemplateOptions
{
    /// <summary>
    /// <c>--template-arg KEY=VALUE</c> items, each value as compact JSON once bound (<see cref="TemplateArgs.Parse"/>); a
    /// recipe gives them as a mapping (<c>template-arg: {enable_thinking: false}</c>) or a list.
    /// </summary>
    [Option("an extra variable of the chat template, as apply_chat_template(messages, KEY=VALUE) passes it (repeatable; e.g. enable_thinking=false for Qwen3); " +
            "VALUE is JSON when it parses (false, 3, \"x\", [..], {..}), else text (docs/text.md, \"Template arguments\")",
        Name = TemplateArgs.Key, HelpName = "KEY=VALUE", KeyValue = true, Parser = typeof(TemplateArgs.OptionParser))]
    public string[] TemplateArg { get; init; } = [];

    /// <summary>The variables (<see cref="TemplateArgs.None"/> when none is given).</summary>
    /// <exception cref="IrrException">An item is malformed (bound jobs' are checked already).</exception>
    public TemplateArgs Args => TemplateArg.Length == 0 ? TemplateArgs.None : TemplateArgs.Parse(TemplateArg);

    /// <summary>Refuses template arguments with raw text (<c>--no-chat-template</c>), where no template is rendered.</summary>
    /// <exception cref="IrrException">"<c>COMMAND: template-arg needs a chat template …</c>".</exception>
    public void Validate(string command, bool noChatTemplate) =>
        Validation.Require(!noChatTemplate || TemplateArg.Length == 0, command,
            $"{TemplateArgs.Key} needs a chat template: with --no-chat-template no template is rendered");
}
