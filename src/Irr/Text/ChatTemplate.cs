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
    : IrrException($"{template} line {line}: the template raised an error: {Budget.Escape(raisedMessage)}")
{
    /// <summary>The message passed to <c>raise_exception</c>, as transformers' <c>TemplateError</c> carries it.</summary>
    public string RaisedMessage { get; } = raisedMessage;
}

/// <summary>
/// A Hugging Face chat template: a Jinja2 template rendered as transformers renders it
/// (<c>trim_blocks</c>, <c>lstrip_blocks</c>, loop controls, <c>tojson</c> = <c>json.dumps</c> with
/// <c>ensure_ascii=False</c>, jinja2's default <c>Undefined</c>). The subset supported is documented in
/// docs/text.md; anything outside it is rejected when the template is parsed, with its line.
/// <para>A template is an untrusted program (it comes with a downloaded model): parsing and rendering run within the
/// limits of docs/formats.md, "Chat templates" — nesting depth (<c>IRR_MAX_TEMPLATE_DEPTH</c>), work
/// (<c>IRR_MAX_TEMPLATE_STEPS</c>), the length of the prompt and of any string (<c>IRR_MAX_TEMPLATE_OUTPUT</c>) and of
/// any list (<c>IRR_MAX_TEMPLATE_ITEMS</c>) — each checked before the memory or time is spent, and exceeding one is an
/// <see cref="IrrException"/> that names the template and the line. Error messages escape control characters.</para>
/// </summary>
public sealed class ChatTemplate
{
    private readonly List<Stmt> body;

    private ChatTemplate(List<Stmt> body, string name)
    {
        this.body = body;
        Name = name;
    }

    /// <summary>
    /// The Llama-2-chat template, as published in meta-llama/Llama-2-7b-chat-hf's tokenizer_config.json (the demo's
    /// models carry it).
    /// </summary>
    public const string Llama2Chat = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}" +
        "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}" +
        "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
        "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
        "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
        "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

    /// <summary>How errors name the template, e.g. "chat template".</summary>
    public string Name { get; }

    /// <summary>The steps the last rendering took (<c>IRR_MAX_TEMPLATE_STEPS</c> counts them), for measuring what real templates need.</summary>
    internal long LastSteps { get; private set; }

    /// <summary>Parses a template.</summary>
    /// <param name="source">The template text.</param>
    /// <param name="name">How errors name it, e.g. "chat template (tokenizer_config.json)".</param>
    /// <exception cref="IrrException">A syntax error, a construct outside the subset, or nesting deeper than
    /// <c>IRR_MAX_TEMPLATE_DEPTH</c>, naming it and its line.</exception>
    public static ChatTemplate Parse(string source, string name = "chat template") =>
        new(Budget.Run(() => Parser.Parse(source, name), out _), name);

    /// <summary>
    /// Renders a conversation the way transformers' <c>apply_chat_template</c> does: <c>messages</c>,
    /// <c>add_generation_prompt</c>, <c>tools</c> and <c>documents</c> (None unless given), and the special
    /// tokens that are set (an unset one stays undefined in the template).
    /// </summary>
    /// <param name="messages">The conversation.</param>
    /// <param name="addGenerationPrompt">Whether to end with the header that starts an assistant turn.</param>
    /// <param name="specialTokens">Special tokens by name (<c>bos_token</c>, <c>eos_token</c> …); null values are left out.</param>
    /// <param name="tools">JSON tool schemas (an array), or null.</param>
    /// <param name="args">Extra variables (<c>--template-arg</c>, transformers' <c>**kwargs</c>), or null.</param>
    /// <exception cref="TemplateRaisedException">The template called <c>raise_exception</c>.</exception>
    /// <exception cref="IrrException">Rendering failed (e.g. an undefined value used in arithmetic), naming the line.</exception>
    public string Render(IEnumerable<ChatMessage> messages, bool addGenerationPrompt,
        IReadOnlyDictionary<string, string?>? specialTokens = null, JsonElement? tools = null, TemplateArgs? args = null)
    {
        var conversation = messages.Select(m => (object?)new OrderedDictionary<string, object?>(StringComparer.Ordinal)
        {
            ["role"] = m.Role,
            ["content"] = m.Content,
        }).ToList();
        return RenderValues(() =>
        {
            var vars = new Dictionary<string, object?>(StringComparer.Ordinal)
            {
                ["messages"] = conversation,
                ["tools"] = tools is { } t ? PyJson.FromJson(t) : null,
                ["documents"] = null,
                ["add_generation_prompt"] = addGenerationPrompt,
            };
            foreach (var (key, value) in specialTokens ?? new Dictionary<string, string?>())
                if (value is not null) vars[key] = value;
            foreach (var (key, value) in (args ?? TemplateArgs.None).Values) vars[key] = PyJson.FromJson(value);
            return vars;
        });
    }

    /// <summary>Renders with variables given as JSON values (any variable a template reads: <c>messages</c>, <c>tools</c>, <c>date_string</c> …).</summary>
    /// <exception cref="TemplateRaisedException">The template called <c>raise_exception</c>.</exception>
    /// <exception cref="IrrException">Rendering failed, naming the line.</exception>
    public string Render(IReadOnlyDictionary<string, JsonElement> variables) =>
        RenderValues(() => variables.ToDictionary(kv => kv.Key, kv => PyJson.FromJson(kv.Value), StringComparer.Ordinal));

    /// <summary>Renders on the template's own thread and budget; the variables are converted there too (their nesting counts).</summary>
    private string RenderValues(Func<Dictionary<string, object?>> variables)
    {
        string output = Budget.Run(() => RenderOnThisThread(variables), out long steps);
        LastSteps = steps;
        return output;
    }

    private string RenderOnThisThread(Func<Dictionary<string, object?>> makeVariables)
    {
        Dictionary<string, object?> variables;
        try
        {
            variables = makeVariables();
        }
        catch (LimitError e)
        {
            throw Limits.Exceeded($"{Name}'s variables", e.What, e.Variable, e.Limit);
        }
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
        catch (LimitError e)
        {
            throw Limits.Exceeded($"{Name} line {LineOf(e)}", e.What, e.Variable, e.Limit);
        }
        catch (JinjaError e)
        {
            throw new IrrException($"{Name} line {LineOf(e)}: {Budget.Escape(e.Message)}", e);
        }
        catch (OverflowException e)
        {
            throw new IrrException($"{Name}: integer overflow (the templates' integers are 64-bit)", e);
        }
        return ctx.Output.ToString();
    }

    private static int LineOf(Exception e) => e.Data["line"] is int line ? line : 0;
}
