using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Irr.Jobs;

/// <summary>One key of a recipe step: a command option (without its dashes) and its value, one scalar or a list of them.</summary>
/// <param name="Key">The option's long name without the leading dashes ("sparsity", "dry-run"), or "runs" for positional arguments.</param>
/// <param name="Values">The value, or the list's items, as written (a relative path not yet resolved).</param>
/// <param name="IsList">Whether the value was written as a YAML list.</param>
/// <param name="Line">The line of the key in the recipe (1-based).</param>
internal sealed record RecipeOption(string Key, IReadOnlyList<string> Values, bool IsList, int Line)
{
    /// <summary>Whether the value is the flag value <c>true</c>.</summary>
    public bool IsTrue => !IsList && Values.Count == 1 && string.Equals(Values[0], "true", StringComparison.OrdinalIgnoreCase);
}

/// <summary>One step of a recipe: a command and its options.</summary>
/// <param name="Id">The step's id: the command with spaces as dashes ("eval-safety"), with "-2", "-3" … when the command repeats.</param>
/// <param name="Command">The command, as <c>irr</c> spells it ("realign", "eval safety").</param>
/// <param name="Line">The line of the step in the recipe (1-based).</param>
/// <param name="Options">The step's keys in recipe order.</param>
internal sealed record RecipeStep(string Id, string Command, int Line, IReadOnlyList<RecipeOption> Options)
{
    /// <summary>The option with this key, or null.</summary>
    public RecipeOption? Find(string key) => Options.FirstOrDefault(o => o.Key == key);

    /// <summary>Whether the flag <paramref name="key"/> is set to true.</summary>
    public bool Flag(string key) => Find(key)?.IsTrue == true;
}

/// <summary>
/// A recipe (<c>irr run RECIPE.yaml</c>): an output directory and a list of steps, each a command with its options,
/// every part with its line so that errors can name it. Relative paths in a recipe are relative to its directory.
/// </summary>
/// <remarks>
/// <code>
/// output: runs/lora
/// steps:
///   - fisher: {model: models/chat, data: data/safety.jsonl}
///   - eval safety: {prompts: [data/advbench.csv, data/catqa.json]}
/// </code>
/// </remarks>
internal sealed class Recipe
{
    private Recipe(string path, string output, int outputLine, IReadOnlyList<RecipeStep> steps)
    {
        Path = path;
        Directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        Output = System.IO.Path.GetFullPath(output, Directory);
        OutputLine = outputLine;
        Steps = steps;
    }

    /// <summary>The recipe file as given (errors name it so).</summary>
    public string Path { get; }

    /// <summary>The directory relative paths are resolved against: the recipe file's (full path).</summary>
    public string Directory { get; }

    /// <summary>The run's output directory (full path): the default home of every step's output, and of run.json.</summary>
    public string Output { get; }

    /// <summary>The line of the <c>output</c> key.</summary>
    public int OutputLine { get; }

    /// <summary>The steps in recipe order.</summary>
    public IReadOnlyList<RecipeStep> Steps { get; }

    /// <summary>A path of the recipe as a full path: relative ones are relative to the recipe's directory.</summary>
    public string Resolve(string path) => System.IO.Path.GetFullPath(path, Directory);

    /// <summary>An error at a line of the recipe: "<c>recipe.yaml line 12: message</c>".</summary>
    public IrrException Error(int line, string message) => ErrorAt(Path, line, message);

    /// <summary>The same recipe with other steps (e.g. with their keys spelled canonically).</summary>
    public Recipe WithSteps(IReadOnlyList<RecipeStep> steps) => new(Path, Output, OutputLine, steps);

    /// <summary>The variable of the largest recipe file (1 MiB).</summary>
    public const string BytesVariable = "IRR_MAX_RECIPE_BYTES";

    /// <summary>The variable of the deepest nesting of YAML collections in a recipe (64), aliases counted as expanded.</summary>
    public const string DepthVariable = "IRR_MAX_RECIPE_DEPTH";

    /// <summary>The variable of the most YAML nodes in a recipe (100,000), aliases counted as expanded.</summary>
    public const string NodesVariable = "IRR_MAX_RECIPE_NODES";

    /// <summary>
    /// Reads and parses a recipe file, read within <see cref="BytesVariable"/> (1 MiB), as strict UTF-8.
    /// </summary>
    /// <exception cref="IrrException">The file cannot be read, is too large, not UTF-8, not valid YAML, beyond a limit or not a recipe; the message names the file and line.</exception>
    public static Recipe Load(string path) => Parse(IO.BoundedText.Read(path, "the recipe", BytesVariable, Limits.Get(BytesVariable, 1L << 20)), path);

    /// <summary>Parses recipe text; <paramref name="path"/> names it in errors and anchors its relative paths.</summary>
    /// <exception cref="IrrException">The text is not valid YAML or not a recipe; the message names the file and line.</exception>
    public static Recipe Parse(string text, string path)
    {
        var root = LoadYaml(text, path);
        if (root is not YamlMappingNode top)
            throw ErrorAt(path, LineOf(root), "a recipe is a mapping with the keys output and steps");
        string? output = null;
        int outputLine = 0;
        YamlSequenceNode? steps = null;
        foreach (var (keyNode, value) in top.Children)
        {
            string key = Scalar(path, keyNode, "a key");
            switch (key)
            {
                case "output":
                    output = Scalar(path, value, "output (a directory)");
                    outputLine = LineOf(keyNode);
                    break;
                case "steps":
                    steps = value as YamlSequenceNode ?? throw ErrorAt(path, LineOf(value), "steps must be a list: - command: {option: value, …}");
                    break;
                default:
                    throw ErrorAt(path, LineOf(keyNode), $"unknown key '{key}' (a recipe has output and steps)");
            }
        }
        if (output is null) throw ErrorAt(path, LineOf(top), "the recipe names no output directory (output: DIR)");
        if (steps is null || steps.Children.Count == 0) throw ErrorAt(path, LineOf(top), "the recipe has no steps (steps: - command: {…})");

        var parsed = new List<RecipeStep>();
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var node in steps.Children)
        {
            if (node is not YamlMappingNode { Children.Count: 1 } step)
                throw ErrorAt(path, LineOf(node), "a step is one command with its options: - command: {option: value, …}");
            var (commandNode, body) = step.Children.Single();
            string command = string.Join(' ', Scalar(path, commandNode, "a command").Split(' ', StringSplitOptions.RemoveEmptyEntries));
            string baseId = command.Replace(' ', '-');
            int n = counts[baseId] = counts.GetValueOrDefault(baseId) + 1;
            string id = n == 1 ? baseId : string.Create(CultureInfo.InvariantCulture, $"{baseId}-{n}");
            parsed.Add(new RecipeStep(id, command, LineOf(commandNode), Options(path, command, body)));
        }
        return new Recipe(path, output, outputLine, parsed);
    }

    private static List<RecipeOption> Options(string path, string command, YamlNode body)
    {
        if (IsPlainEmpty(body)) return [];
        if (body is not YamlMappingNode map)
            throw ErrorAt(path, LineOf(body), $"{command}: the options are a mapping {{option: value, …}}");
        var options = new List<RecipeOption>();
        foreach (var (keyNode, value) in map.Children)
        {
            string key = Scalar(path, keyNode, "an option name");
            int line = LineOf(keyNode);
            options.Add(value switch
            {
                YamlSequenceNode list => new RecipeOption(key, list.Children.Select(item => Scalar(path, item, $"{command}: an item of {key}")).ToList(), true, line),
                YamlScalarNode when IsPlainEmpty(value) => throw ErrorAt(path, line, $"{command}: {key} has no value"),
                YamlScalarNode => new RecipeOption(key, [Scalar(path, value, key)], false, line),
                // A KEY=VALUE option's mapping {KEY: VALUE, …} (template-arg): its items "KEY=JSON".
                YamlMappingNode pairs when TakesMapping(command, key) =>
                    new RecipeOption(key, pairs.Children.Select(p => $"{Scalar(path, p.Key, $"{command}: a key of {key}")}={Json(path, p.Value)}").ToList(), true, line),
                _ => throw ErrorAt(path, line, $"{command}: {key} must be a value or a list of values"),
            });
        }
        return options;
    }

    // Whether the key is a KEY=VALUE option of the command, or a misspelling of one (template_args), which the step's
    // check then names with its suggestion.
    private static bool TakesMapping(string command, string key) => RecipeSteps.SchemaOf(command) is { } schema
        && (schema.Find(key) is { Attribute.KeyValue: true }
            || (schema.Find(key) is null && RecipeSteps.Suggestion(key, schema.Options.Where(o => o.Attribute.KeyValue).Select(o => o.Key)).Length > 0));

    /// <summary>
    /// A YAML value as JSON text, as YAML's core schema reads it: a plain scalar is null (<c>~</c>, <c>null</c>, empty),
    /// a flag (<c>true</c>/<c>false</c> in any of YAML's spellings) or a number when it is one, else a string; a quoted
    /// scalar is a string; sequences and mappings nest.
    /// </summary>
    private static string Json(string path, YamlNode node) => node switch
    {
        YamlScalarNode when IsPlainEmpty(node) => "null",
        YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any, Value: "true" or "True" or "TRUE" } => "true",
        YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any, Value: "false" or "False" or "FALSE" } => "false",
        YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any, Value: { } v } when IsJsonNumber(v) => v,
        YamlScalarNode { Value: var v } => System.Text.Json.JsonSerializer.Serialize(v ?? ""),
        YamlSequenceNode list => "[" + string.Join(",", list.Children.Select(n => Json(path, n))) + "]",
        YamlMappingNode map => "{" + string.Join(",", map.Children.Select(p => System.Text.Json.JsonSerializer.Serialize(Scalar(path, p.Key, "a key")) + ":" + Json(path, p.Value))) + "}",
        _ => "null",
    };

    private static bool IsJsonNumber(string text)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(text);
            return doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Number;
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }

    // An empty plain scalar (`key:` with nothing after it, or `~`/null) rather than the string "".
    private static bool IsPlainEmpty(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any, Value: null or "" or "~" or "null" or "Null" or "NULL" };

    private static string Scalar(string path, YamlNode node, string what) =>
        node is YamlScalarNode { Value: { } value } ? value : throw ErrorAt(path, LineOf(node), $"{what} must be a plain value");

    private static int LineOf(YamlNode node) => checked((int)node.Start.Line);

    // Every message is escaped: keys, commands and YAML's own messages quote the recipe's text.
    private static IrrException ErrorAt(string path, long line, string message) =>
        new(string.Create(CultureInfo.InvariantCulture, $"{path} line {line}: {Diagnostics.Escape(message)}"));

    private static YamlNode LoadYaml(string text, string path)
    {
        var parser = new TrackingParser(new BoundedParser(new Parser(new StringReader(text)), path,
            Limits.Get(DepthVariable, 64), Limits.Get(NodesVariable, 100_000)));
        var stream = new YamlStream();
        try
        {
            stream.Load(parser);
        }
        catch (YamlException e)
        {
            throw ErrorAt(path, Math.Clamp(e.Start.Line, 1, LastLine(text)), $"not valid YAML: {e.Message}");
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner fails so on some unterminated flow collections ({a: 1 without its brace).
            throw ErrorAt(path, Math.Clamp(parser.Last.Line, 1, LastLine(text)), "not valid YAML: an unterminated { … } or [ … ]?");
        }
        if (stream.Documents.Count == 0) throw ErrorAt(path, 1, "the recipe is empty");
        if (stream.Documents.Count > 1) throw ErrorAt(path, LineOf(stream.Documents[1].RootNode), "a recipe is one YAML document");
        return stream.Documents[0].RootNode;
    }

    // The last line with text: an error at the end of the stream (an unclosed bracket) is reported there, not on the empty line after it.
    private static long LastLine(string text)
    {
        var lines = text.Split('\n');
        int last = Array.FindLastIndex(lines, l => !string.IsNullOrWhiteSpace(l));
        return Math.Max(last + 1, 1);
    }

    // Bounds what a recipe's YAML may make (YamlDotNet has no such settings): the nesting of collections and the number
    // of nodes, both with aliases counted as the nodes they stand for, so that a billion laughs (an alias of an alias …,
    // as a mapping key, which YamlDotNet hashes whole) or 100,000 nested brackets end in one error at their line.
    private sealed class BoundedParser(IParser inner, string path, long maxDepth, long maxNodes) : IParser
    {
        // An open collection: its anchor, its level (1 for the outermost), the node count at its start, the deepest level inside.
        private sealed class Open(string? anchor, int level, long nodesAtStart)
        {
            public string? Anchor { get; } = anchor;
            public int Level { get; } = level;
            public long NodesAtStart { get; } = nodesAtStart;
            public long Deepest { get; set; } = level;
        }

        private readonly Stack<Open> _open = new();
        private readonly Dictionary<string, (long Nodes, long Depth)> _anchors = new(StringComparer.Ordinal);
        private long _nodes;

        public ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            bool more = inner.MoveNext();
            switch (inner.Current)
            {
                case Scalar scalar:
                    Count(1, scalar);
                    if (!scalar.Anchor.IsEmpty) _anchors[scalar.Anchor.Value] = (1, 0);
                    break;
                case NodeEvent start and (SequenceStart or MappingStart):
                    Count(1, start);
                    _open.Push(new Open(start.Anchor.IsEmpty ? null : start.Anchor.Value, _open.Count + 1, _nodes - 1));
                    Deepen(_open.Count, start);
                    break;
                case SequenceEnd or MappingEnd when _open.Count > 0:
                    var done = _open.Pop();
                    if (done.Anchor is { } anchor) _anchors[anchor] = (_nodes - done.NodesAtStart, done.Deepest - done.Level + 1);
                    if (_open.TryPeek(out var parent)) parent.Deepest = Math.Max(parent.Deepest, done.Deepest);
                    break;
                case AnchorAlias alias:
                    string name = alias.Value.Value;
                    if (_open.Any(o => o.Anchor == name))
                        throw ErrorAt(path, alias.Start.Line, $"the alias *{name} is inside its own anchor &{name}");
                    if (!_anchors.TryGetValue(name, out var target))
                        throw ErrorAt(path, alias.Start.Line, $"the alias *{name} refers to no anchor before it");
                    Count(target.Nodes, alias);
                    Deepen(_open.Count + target.Depth, alias);
                    break;
            }
            return more;
        }

        private void Count(long nodes, ParsingEvent at)
        {
            if ((_nodes += nodes) > maxNodes)
                throw Limits.Exceeded(Where(at), "the number of YAML nodes (aliases counted as what they repeat)", NodesVariable, maxNodes);
        }

        private void Deepen(long level, ParsingEvent at)
        {
            if (level > maxDepth) throw Limits.Exceeded(Where(at), "the YAML nesting depth (aliases counted as what they repeat)", DepthVariable, maxDepth);
            if (_open.TryPeek(out var top)) top.Deepest = Math.Max(top.Deepest, level);
        }

        private string Where(ParsingEvent at) => string.Create(CultureInfo.InvariantCulture, $"{path} line {at.Start.Line}");
    }

    // Remembers where the last event ended, for errors that YamlDotNet raises without a position.
    private sealed class TrackingParser(IParser inner) : IParser
    {
        public Mark Last { get; private set; } = Mark.Empty;

        public ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            bool more = inner.MoveNext();
            if (inner.Current is { } current) Last = current.End;
            return more;
        }
    }
}
