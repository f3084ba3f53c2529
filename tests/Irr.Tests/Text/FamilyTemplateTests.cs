using System.Text.Json;
using Irr.Text;

namespace Irr.Tests.Text;

/// <summary>
/// The chat templates of Qwen3, Gemma-2, Gemma-3 and Phi-3 against jinja/family_renderings.json, made by real jinja2 set up
/// as transformers sets it up, with template keyword arguments as <c>apply_chat_template(messages, **kwargs)</c> passes them
/// (make_family_renderings.py): every rendering char for char, every raised error with its message.
/// </summary>
public class FamilyTemplateTests
{
    internal static readonly Lazy<JsonDocument> Doc = new(() =>
        JsonDocument.Parse(File.ReadAllText(Fixtures.Local("jinja/family_renderings.json"))));

    internal static IEnumerable<JsonElement> Entries => Doc.Value.RootElement.GetProperty("entries").EnumerateArray();

    public static TheoryData<int, string> Cases()
    {
        var data = new TheoryData<int, string>();
        int i = 0;
        foreach (var c in Entries)
            data.Add(i++, $"{Path.GetFileNameWithoutExtension(c.GetProperty("template_file").GetString())}/{c.GetProperty("case").GetString()}/" +
                          $"{(c.GetProperty("add_generation_prompt").GetBoolean() ? "gen" : "nogen")}/{c.GetProperty("kwargs").GetRawText()}");
        return data;
    }

    [Fact]
    public void ThereAre37Cases() => Assert.Equal(37, Entries.Count());

    /// <summary>The kwargs as --template-arg items: KEY=JSON.</summary>
    internal static TemplateArgs ArgsOf(JsonElement entry) =>
        TemplateArgs.Parse(entry.GetProperty("kwargs").EnumerateObject().Select(p => $"{p.Name}={p.Value.GetRawText()}"));

    internal static string SourceOf(JsonElement entry) => entry.GetProperty("template_file").GetString() is var file && file == "kwargs"
        ? Doc.Value.RootElement.GetProperty("kwargs_template").GetString()!
        : File.ReadAllText(Fixtures.Local(file!));

    internal static Dictionary<string, string?> SpecialTokensOf(JsonElement entry) => new()
    {
        ["bos_token"] = entry.GetProperty("bos_token").GetString(),
        ["eos_token"] = entry.GetProperty("eos_token").GetString(),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void RendersAsJinja2Does(int index, string name)
    {
        var c = Entries.ElementAt(index);
        var template = ChatTemplate.Parse(SourceOf(c));
        var messages = c.GetProperty("messages");
        bool agp = c.GetProperty("add_generation_prompt").GetBoolean();
        string? expected = c.GetProperty("expected").GetString();

        // As irr renders a conversation: ChatMessages, the special tokens, the template arguments (reasoning_content is a
        // field ChatMessage has not: those conversations go the way of the variables below only).
        Func<string>? asMessages = messages.EnumerateArray().All(m => m.EnumerateObject().Count() == 2)
            ? () => template.Render(messages.EnumerateArray().Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)),
                agp, SpecialTokensOf(c), args: ArgsOf(c))
            : null;
        // As every variable given as JSON, the kwargs among them.
        var vars = new Dictionary<string, JsonElement>
        {
            ["messages"] = messages,
            ["tools"] = JsonDocument.Parse("null").RootElement,
            ["documents"] = JsonDocument.Parse("null").RootElement,
            ["add_generation_prompt"] = c.GetProperty("add_generation_prompt"),
        };
        foreach (var token in new[] { "bos_token", "eos_token" })
            if (c.GetProperty(token).ValueKind != JsonValueKind.Null) vars[token] = c.GetProperty(token);
        foreach (var p in c.GetProperty("kwargs").EnumerateObject()) vars[p.Name] = p.Value;
        Func<string> asVariables = () => template.Render(vars);

        foreach (var render in new[] { asMessages, asVariables }.OfType<Func<string>>())
        {
            if (expected is null)
                Assert.Equal(c.GetProperty("expected_error").GetString(), Assert.Throws<TemplateRaisedException>(render).RaisedMessage);
            else
                Assert.Equal(expected, render());
        }
        Assert.NotEmpty(name);
    }

    [Fact]
    public void AValueIsJsonWhenItParsesElseText()
    {
        var args = TemplateArgs.Parse(["flag=false", "n=3", "x=1.5", "s=\"x\"", "items=[1,\"b\",null]", "obj={\"k\": \"v\"}", "word=hello", "spaced=a b", "empty=", "eq=a=b"]);
        var byName = args.Values.ToDictionary(v => v.Name, v => v.Value);
        Assert.Equal(JsonValueKind.False, byName["flag"].ValueKind);
        Assert.Equal(3, byName["n"].GetInt32());
        Assert.Equal(1.5, byName["x"].GetDouble());
        Assert.Equal("x", byName["s"].GetString());
        Assert.Equal(3, byName["items"].GetArrayLength());
        Assert.Equal("v", byName["obj"].GetProperty("k").GetString());
        Assert.Equal("hello", byName["word"].GetString());
        Assert.Equal("a b", byName["spaced"].GetString());
        Assert.Equal("", byName["empty"].GetString());
        Assert.Equal("a=b", byName["eq"].GetString());
        // The items as the option keeps them (and a fingerprint compares): values as compact JSON.
        Assert.Equal(["flag=false", "n=3", "x=1.5", "s=\"x\"", "items=[1,\"b\",null]", "obj={\"k\": \"v\"}", "word=\"hello\"", "spaced=\"a b\"", "empty=\"\"", "eq=\"a=b\""], args.ToItems());
    }

    [Theory]
    [InlineData("messages=[]", "template-arg 'messages=[]': messages is set by irr itself")]
    [InlineData("add_generation_prompt=false", "add_generation_prompt is set by irr itself")]
    [InlineData("bos_token=\"<s>\"", "bos_token is set by irr itself")]
    [InlineData("tools=[]", "tools is set by irr itself")]
    [InlineData("enable_thinking", "expected KEY=VALUE")]
    [InlineData("enable-thinking=false", "KEY must be a Python identifier")]
    [InlineData("enable_thinking=False", "VALUE is JSON (false), not Python; for the string write \"False\"")]
    [InlineData("x=None", "VALUE is JSON (null)")]
    public void ABadItemIsOneLineNamingTheOption(string item, string message)
    {
        var e = Assert.Throws<IrrException>(() => TemplateArgs.Parse([item]));
        Assert.Contains(message, e.Message);
        Assert.StartsWith("template-arg '", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void AKeyGivenTwiceIsRefused() =>
        Assert.Contains("enable_thinking is given twice", Assert.Throws<IrrException>(() => TemplateArgs.Parse(["enable_thinking=false", "enable_thinking=true"])).Message);
}
