using System.Text.Json.Nodes;
using Irr.Jobs;
using Irr.Tests.IO;
using Irr.Tests.Text;

namespace Irr.Tests.Cli;

/// <summary>
/// <c>--template-arg KEY=VALUE</c> as every command that renders a chat template takes it, and as a recipe gives it; the
/// renderings are real jinja2's (jinja/family_renderings.json).
/// </summary>
public class TemplateArgCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    /// <summary>The TinyLlama tokenizer folder with another real template as its chat_template.jinja (which takes precedence, as in transformers).</summary>
    private static string WithTemplate(TempDir dir, string template)
    {
        string model = dir["model"];
        Directory.CreateDirectory(model);
        foreach (string file in Directory.GetFiles(Fixtures.TinyLlamaDir)) File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
        File.Copy(Fixtures.Local("templates/" + template), Path.Combine(model, "chat_template.jinja"));
        return model;
    }

    private static string Jinja2(string template, string @case, string kwargs) => FamilyTemplateTests.Entries.Single(e =>
        e.GetProperty("template_file").GetString() == "templates/" + template && e.GetProperty("case").GetString() == @case
        && e.GetProperty("add_generation_prompt").GetBoolean() && JsonNode.DeepEquals(JsonNode.Parse(e.GetProperty("kwargs").GetRawText()), JsonNode.Parse(kwargs))).GetProperty("expected").GetString()!;

    [Fact]
    public void ChatFormatPassesThemToTheTemplateAsTransformersDoes()
    {
        using var dir = new TempDir();
        string model = WithTemplate(dir, "Qwen-Qwen3-0.6B.jinja");
        const string q = "How many r's are in strawberry?";
        Assert.Equal((0, Jinja2("Qwen-Qwen3-0.6B.jinja", "user", "{}"), ""), Run("chat-format", "--model", model, "--user", q));
        Assert.Equal((0, Jinja2("Qwen-Qwen3-0.6B.jinja", "user", """{"enable_thinking": false}"""), ""),
            Run("chat-format", "--model", model, "--user", q, "--template-arg", "enable_thinking=false"));
        Assert.Equal((0, Jinja2("Qwen-Qwen3-0.6B.jinja", "user", """{"enable_thinking": true}"""), ""),
            Run("chat-format", "--model", model, "--user", q, "--template-arg", "enable_thinking=true"));
        // The text "false" is a non-empty string, which is not `false` to the template: thinking stays on.
        Assert.Equal((0, Jinja2("Qwen-Qwen3-0.6B.jinja", "enable-thinking-string", """{"enable_thinking": "false"}"""), ""),
            Run("chat-format", "--model", model, "--user", q, "--template-arg", "enable_thinking=\"false\""));
    }

    [Theory]
    [InlineData("messages=[]", "chat-format: template-arg 'messages=[]': messages is set by irr itself")]
    [InlineData("eos_token=x", "chat-format: template-arg 'eos_token=x': eos_token is set by irr itself")]
    [InlineData("enable_thinking=False", "chat-format: template-arg 'enable_thinking=False': VALUE is JSON (false), not Python")]
    public void ABadOneIsOneLineNamingTheOptionWithExitCode2(string item, string message)
    {
        using var dir = new TempDir();
        var (code, output, error) = Run("chat-format", "--model", WithTemplate(dir, "Qwen-Qwen3-0.6B.jinja"), "--user", "Hi", "--template-arg", item);
        Assert.Equal((2, ""), (code, output));
        Assert.Contains(message, error);
        Assert.Single(error.TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public void Gemma2sRefusalOfASystemRoleIsOneLineNamingTheTemplateWithExitCode2()
    {
        using var dir = new TempDir();
        var (code, output, error) = Run("chat-format", "--model", WithTemplate(dir, "google-gemma-2-2b-it.jinja"), "--user", "Hi", "--system", "Be brief.");
        Assert.Equal((2, ""), (code, output));
        Assert.Equal("error: chat template (chat_template.jinja) line 1: the template raised an error: System role not supported\n", error);
    }

    [Fact]
    public void ASystemPromptGemma2RefusesSaysWhereItCameFrom()
    {
        // the commands that build prompts (generate, eval, train, fisher, realign) name --system-prompt as the way out
        using var dir = new TempDir();
        var tokenizer = Irr.Text.PretrainedTokenizer.Load(WithTemplate(dir, "google-gemma-2-2b-it.jinja"));
        var e = Assert.Throws<IrrException>(() => Irr.Text.ChatPrompt.Render(tokenizer, "Hi", "Be brief."));
        Assert.StartsWith("chat template (chat_template.jinja) line 1: the template raised an error: System role not supported (", e.Message);
        Assert.Contains("use --system-prompt none", e.Message);
        Assert.StartsWith("<s><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", Irr.Text.ChatPrompt.Render(tokenizer, "Hi", null)); // bos_token of the tokenizer copied here
    }

    [Fact]
    public void TheyNeedAChatTemplate()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["p.jsonl"], """{"prompt": "Hi"}""");
        var (code, _, error) = Run("generate", "--model", Fixtures.TinyLlamaDir, "--prompts", dir["p.jsonl"], "--output", dir["o.jsonl"],
            "--no-chat-template", "--template-arg", "enable_thinking=false");
        Assert.Equal(2, code);
        Assert.Contains("generate: template-arg needs a chat template", error);
    }

    [Theory]
    [InlineData(typeof(Irr.Text.ChatFormatJob))]
    [InlineData(typeof(Irr.Eval.GenerateJob))]
    [InlineData(typeof(Irr.Eval.EvalSafetyJob))]
    [InlineData(typeof(Irr.Eval.EvalTaskJob))]
    [InlineData(typeof(Irr.Model.ScoreJob))]
    [InlineData(typeof(Irr.Model.TrainJob))]
    [InlineData(typeof(Irr.Realign.FisherJob))]
    [InlineData(typeof(Irr.Realign.RealignJob))]
    [InlineData(typeof(Irr.Realign.SweepJob))]
    public void EveryCommandThatRendersATemplateTakesThemAndTheyAreFingerprinted(Type job)
    {
        var option = JobSchema.Of(job).Find("template-arg");
        Assert.NotNull(option);
        Assert.True(option.Attribute.Fingerprinted);
        Assert.All(option.Properties, p => Assert.Equal(typeof(Irr.Text.ChatTemplateOptions), p.Property.DeclaringType)); // declared once
    }

    [Fact]
    public void TheSweepsEvaluationsRenderWithTheRealignmentsArgs()
    {
        var sweep = JobSchema.Of<Irr.Realign.SweepJob>().Bind<Irr.Realign.SweepJob>(new Dictionary<string, IReadOnlyList<string>>
        {
            ["base"] = ["b"], ["finetuned"] = ["f"], ["safety-vector"] = ["v"], ["fisher"] = ["fi"], ["calibration"] = ["c"],
            ["harmful-val"] = ["h"], ["task-val"] = ["t"], ["task-metric"] = ["contains"], ["output"] = ["o"], ["sparsity"] = ["0,0.5"], ["template-arg"] = ["enable_thinking=false"],
        });
        Assert.Equal(["enable_thinking=false"], sweep.Realign.Chat.TemplateArg);
        Assert.Equal(["enable_thinking=false"], sweep.Safety.Chat.TemplateArg);
        Assert.Equal(["enable_thinking=false"], sweep.Task.Chat.TemplateArg);
    }

    private static JsonObject Fingerprint(string templateArg)
    {
        var recipe = Recipe.Parse($"output: out\nsteps:\n  - generate:\n      model: m\n      prompts: p.jsonl\n      output: o.jsonl\n      template-arg: {templateArg}\n", "/work/r.yaml");
        var schema = RecipeSteps.SchemaOf("generate")!;
        var step = RecipeSteps.Canonical(recipe, recipe.Steps[0], schema, _ => null);
        return schema.Fingerprint(schema.Bind(step.Options.ToDictionary(o => o.Key, o => o.Values)));
    }

    private static List<string> Items(JsonObject fingerprint) => fingerprint["template-arg"]!.AsArray().Select(n => (string)n!).ToList();

    [Fact]
    public void ARecipeGivesThemAsAMappingOrAListAndAChangeRerunsTheStep()
    {
        var mapping = Fingerprint("{enable_thinking: false, depth: 2, name: x, quoted: \"false\", list: [1, a], nested: {k: ~}}");
        Assert.Equal(["enable_thinking=false", "depth=2", "name=\"x\"", "quoted=\"false\"", "list=[1,\"a\"]", "nested={\"k\":null}"], Items(mapping));
        // The list form and the mapping form are one value.
        Assert.True(JsonNode.DeepEquals(Fingerprint("{enable_thinking: false}"), Fingerprint("[enable_thinking=false]")));
        Assert.True(JsonNode.DeepEquals(Fingerprint("{enable_thinking: False}"), Fingerprint("[enable_thinking=false]"))); // YAML's False
        Assert.False(JsonNode.DeepEquals(Fingerprint("{enable_thinking: false}"), Fingerprint("{enable_thinking: true}")));
        // A comma inside a value is not a list separator.
        Assert.Equal(["pair=[1,2]"], Items(Fingerprint("[\"pair=[1,2]\"]")));
    }

    [Fact]
    public void ARecipesBadOnesNameTheLine()
    {
        var recipe = Recipe.Parse("output: out\nsteps:\n  - generate:\n      model: m\n      prompts: p.jsonl\n      output: o.jsonl\n      template-arg: {messages: []}\n", "r.yaml");
        var schema = RecipeSteps.SchemaOf("generate")!;
        var step = RecipeSteps.Canonical(recipe, recipe.Steps[0], schema, _ => null);
        var e = Assert.Throws<IrrException>(() => schema.Bind(step.Options.ToDictionary(o => o.Key, o => o.Values)));
        Assert.StartsWith("generate: template-arg 'messages=[]': messages is set by irr itself", e.Message);
        // transformers' spelling is suggested.
        var underscored = Recipe.Parse("output: out\nsteps:\n  - generate:\n      model: m\n      template_args: {enable_thinking: false}\n", "r.yaml");
        Assert.Equal("r.yaml line 5: generate: unknown option 'template_args' (did you mean 'template-arg'?)",
            Assert.Throws<IrrException>(() => RecipeSteps.Canonical(underscored, underscored.Steps[0], schema, _ => null)).Message);
        // A mapping for an option that takes none.
        Assert.Equal("r.yaml line 5: generate: prompts must be a value or a list of values",
            Assert.Throws<IrrException>(() => Recipe.Parse("output: out\nsteps:\n  - generate:\n      model: m\n      prompts: {a: b}\n", "r.yaml")).Message);
    }
}
