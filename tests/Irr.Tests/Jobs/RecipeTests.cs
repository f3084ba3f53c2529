using Irr.Jobs;

namespace Irr.Tests.Jobs;

/// <summary>The recipe model: steps with ids and lines, values and lists, paths relative to the recipe, errors with their line.</summary>
public class RecipeTests
{
    private const string Text = """
        # a comment
        output: runs/one
        steps:
          - fisher: {model: m, data: d.jsonl}
          - eval safety:
              prompts: [a.json, b.csv]
              dry-run: true
          - fisher:
              model: m
          - report:
          - eval  safety: {}
        """;

    [Fact]
    public void StepsHaveIdsLinesAndValues()
    {
        var recipe = Recipe.Parse(Text, "/work/recipes/r.yaml");
        Assert.Equal("/work/recipes/runs/one", recipe.Output);
        Assert.Equal(2, recipe.OutputLine);
        Assert.Equal(["fisher", "eval-safety", "fisher-2", "report", "eval-safety-2"], recipe.Steps.Select(s => s.Id));
        Assert.Equal(["fisher", "eval safety", "fisher", "report", "eval safety"], recipe.Steps.Select(s => s.Command));
        Assert.Equal([4, 5, 8, 10, 11], recipe.Steps.Select(s => s.Line));

        var eval = recipe.Steps[1];
        var prompts = eval.Find("prompts")!;
        Assert.True(prompts.IsList);
        Assert.Equal(["a.json", "b.csv"], prompts.Values);
        Assert.Equal(6, prompts.Line);
        Assert.True(eval.Flag("dry-run"));
        Assert.False(eval.Flag("prompts"));
        var data = recipe.Steps[0].Find("data")!;
        Assert.Equal(("d.jsonl", false, 4), (Assert.Single(data.Values), data.IsList, data.Line));
        Assert.Empty(recipe.Steps[3].Options);
        Assert.Equal("/work/recipes/m", recipe.Resolve("m"));
        Assert.Equal("/abs/m", recipe.Resolve("/abs/m"));
    }

    [Theory]
    [InlineData("steps:\n  - fisher: {}\n", 1, "the recipe names no output directory")]
    [InlineData("output: o\n", 1, "the recipe has no steps")]
    [InlineData("output: o\nsteps: fisher\n", 2, "steps must be a list")]
    [InlineData("output: o\nsteps:\n  - fisher: {}\n    realign: {}\n", 3, "a step is one command with its options")]
    [InlineData("output: o\nsteps:\n  - fisher: [a, b]\n", 3, "fisher: the options are a mapping")]
    [InlineData("output: o\nsteps:\n  - fisher:\n      model:\n", 4, "fisher: model has no value")]
    [InlineData("output: o\nsteps:\n  - fisher:\n      model: {a: b}\n", 4, "fisher: model must be a value or a list of values")]
    [InlineData("output: o\nsteps:\n  - fisher:\n      data: [a, [b]]\n", 4, "fisher: an item of data must be a plain value")]
    [InlineData("output: o\nstep:\n  - fisher: {}\n", 2, "unknown key 'step'")]
    [InlineData("output: o\noutput: p\nsteps: []\n", 2, "not valid YAML: Duplicate key output")]
    [InlineData("output: o\nsteps:\n  - fisher: {model: a\n", 3, "not valid YAML")]
    [InlineData("", 1, "the recipe is empty")]
    [InlineData("- a\n", 1, "a recipe is a mapping with the keys output and steps")]
    [InlineData("output: o\nsteps: [{fisher: {}}]\n---\noutput: p\n", 4, "a recipe is one YAML document")]
    public void ErrorsNameTheFileAndLine(string text, int line, string message)
    {
        var e = Assert.Throws<IrrException>(() => Recipe.Parse(text, "r.yaml"));
        Assert.StartsWith($"r.yaml line {line}: ", e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void AMissingFileIsAnIrrException()
    {
        var e = Assert.Throws<IrrException>(() => Recipe.Load("/nonexistent/recipe.yaml"));
        Assert.Contains("/nonexistent/recipe.yaml: cannot read the recipe", e.Message);
    }
}
