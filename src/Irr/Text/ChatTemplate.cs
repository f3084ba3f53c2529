using System.Text.Json;
using Irr.Text.Jinja;

namespace Irr.Text;

/// <summary>One message of a conversation, as chat templates see it (<c>{"role": …, "content": …}</c>).</summary>
/// <param name="Role">"system", "user" or "assistant".</param>
/// <param name="Content">The text of the message.</param>
public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// The template raised an error on purpose with <c>raise_exception(message)</c>, e.g. "Conversation roles
/// must alternate user/assistant/user/assistant/..."; <see cref="RaisedMessage"/> is that message.
/// </summary>
public sealed class TemplateRaisedException(string template, int line, string raisedMessage)
    : IrrException($"{template} line {line}: the template raised an error: {raisedMessage}")
{
    /// <summary>The message passed to <c>raise_exception</c>, as transformers' <c>TemplateError</c> carries it.</summary>
    public string RaisedMessage { get; } = raisedMessage;
}

/// <summary>
/// A Hugging Face chat template: a Jinja2 template rendered as transformers renders it
/// (<c>trim_blocks</c>, <c>lstrip_blocks</c>, loop controls, <c>tojson</c> = <c>json.dumps</c> with
/// <c>ensure_ascii=False</c>, jinja2's default <c>Undefined</c>). The subset supported is documented in
/// docs/text.md; anything outside it is rejected when the template is parsed, with its line.
/// </summary>
public sealed class ChatTemplate
{
    private readonly List<Stmt> body;

    private ChatTemplate(List<Stmt> body, string name)
    {
        this.body = body;
        Name = name;
    }

    /// <summary>How errors name the template, e.g. "chat template".</summary>
    public string Name { get; }

    /// <summary>Parses a template.</summary>
    /// <param name="source">The template text.</param>
    /// <param name="name">How errors name it.</param>
    /// <exception cref="IrrException">A syntax error or a construct outside the subset, naming it and its line.</exception>
    public static ChatTemplate Parse(string source, string name = "chat template") => new(Parser.Parse(source, name), name);

    /// <summary>
    /// Renders a conversation the way transformers' <c>apply_chat_template</c> does: <c>messages</c>,
    /// <c>add_generation_prompt</c>, <c>tools</c> and <c>documents</c> (None unless given), and the special
    /// tokens that are set (an unset one stays undefined in the template).
    /// </summary>
    /// <param name="messages">The conversation.</param>
    /// <param name="addGenerationPrompt">Whether to end with the header that starts an assistant turn.</param>
    /// <param name="specialTokens">Special tokens by name (<c>bos_token</c>, <c>eos_token</c> …); null values are left out.</param>
    /// <param name="tools">JSON tool schemas (an array), or null.</param>
    /// <exception cref="TemplateRaisedException">The template called <c>raise_exception</c>.</exception>
    /// <exception cref="IrrException">Rendering failed (e.g. an undefined value used in arithmetic), naming the line.</exception>
    public string Render(IEnumerable<ChatMessage> messages, bool addGenerationPrompt,
        IReadOnlyDictionary<string, string?>? specialTokens = null, JsonElement? tools = null)
    {
        var vars = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = messages.Select(m => (object?)new OrderedDictionary<string, object?>(StringComparer.Ordinal)
            {
                ["role"] = m.Role,
                ["content"] = m.Content,
            }).ToList(),
            ["tools"] = tools is { } t ? PyJson.FromJson(t) : null,
            ["documents"] = null,
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        foreach (var (key, value) in specialTokens ?? new Dictionary<string, string?>())
            if (value is not null) vars[key] = value;
        return RenderValues(vars);
    }

    /// <summary>Renders with variables given as JSON values (any variable a template reads: <c>messages</c>, <c>tools</c>, <c>date_string</c> …).</summary>
    /// <exception cref="TemplateRaisedException">The template called <c>raise_exception</c>.</exception>
    /// <exception cref="IrrException">Rendering failed, naming the line.</exception>
    public string Render(IReadOnlyDictionary<string, JsonElement> variables) =>
        RenderValues(variables.ToDictionary(kv => kv.Key, kv => PyJson.FromJson(kv.Value), StringComparer.Ordinal));

    private string RenderValues(Dictionary<string, object?> variables)
    {
        var context = new Scope(null);
        foreach (var (k, v) in variables) context.Set(k, v);
        var ctx = new RenderContext(new Scope(context));
        try
        {
            Stmt.RenderAll(body, ctx);
        }
        catch (RaisedError e)
        {
            throw new TemplateRaisedException(Name, LineOf(e), e.Message);
        }
        catch (JinjaError e)
        {
            throw new IrrException($"{Name} line {LineOf(e)}: {e.Message}", e);
        }
        catch (OverflowException e)
        {
            throw new IrrException($"{Name}: integer overflow", e);
        }
        return ctx.Output.ToString();
    }

    private static int LineOf(Exception e) => e.Data["line"] is int line ? line : 0;
}
