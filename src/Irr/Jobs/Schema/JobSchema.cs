using System.Collections.Concurrent;
using System.Globalization;
using System.Reflection;
using System.Text.Json.Nodes;

namespace Irr.Jobs;

/// <summary>
/// One option of a job as its <see cref="OptionAttribute"/> declares it: where it lives (a property, or a property of
/// an options record the job holds), its key, kind and default.
/// </summary>
/// <param name="Key">The long name without dashes ("batch-size").</param>
/// <param name="Attribute">The declaration.</param>
/// <param name="Properties">Every property the value is bound to: one, or one per options record that declares the same key (a shared option).</param>
/// <param name="Default">The value of a fresh job (the property's initial value).</param>
public sealed record JobOption(string Key, OptionAttribute Attribute, IReadOnlyList<OptionPath> Properties, object? Default)
{
    /// <summary>The type of the value.</summary>
    public Type ValueType => Properties[0].Property.PropertyType;

    /// <summary>Whether it is a flag (a bool, true when given).</summary>
    public bool IsFlag => ValueType == typeof(bool);

    /// <summary>Whether it takes a list (a YAML list, repeated values or a comma-separated string).</summary>
    public bool IsList => ValueType != typeof(string) && ValueType.IsAssignableTo(typeof(System.Collections.IEnumerable));

    /// <summary>What it names.</summary>
    public OptionKind Kind => Attribute.Kind;

    /// <summary>Whether it names a file or directory (resolved against a recipe's directory).</summary>
    public bool IsPath => Kind is OptionKind.Input or OptionKind.Output or OptionKind.Path;

    /// <summary>The option's value in <paramref name="job"/> (the first property's, for a shared option; a negated flag's as the flag).</summary>
    public object? ValueIn(object job) => Properties[0].Get(job) is var value && Attribute.Negated ? !(bool)value! : value;
}

/// <summary>A property reached from a job: through the options records that hold it (<c>Engine.Url</c>), then itself.</summary>
/// <param name="Through">The options-record properties from the job down to the holder, outermost first.</param>
/// <param name="Property">The property itself.</param>
public sealed record OptionPath(IReadOnlyList<PropertyInfo> Through, PropertyInfo Property)
{
    /// <summary>The value in <paramref name="job"/>, or null when a record on the way is null.</summary>
    public object? Get(object job)
    {
        object? holder = job;
        foreach (var p in Through) holder = holder is null ? null : p.GetValue(holder);
        return holder is null ? null : Property.GetValue(holder);
    }
}

/// <summary>
/// A job type's options, read from its <see cref="OptionAttribute"/>s and <see cref="OptionsAttribute"/> records: the one
/// declaration that the command line, recipe keys, help texts, defaults, <c>irr-report.json</c>'s options and the
/// up-to-date fingerprints of <c>irr run</c> and the sweep derive from. <see cref="Bind"/> makes a job from option values
/// as the command line or a recipe gives them; the job's own <c>Validate</c> then checks them together.
/// </summary>
public sealed class JobSchema
{
    private static readonly ConcurrentDictionary<Type, JobSchema> Cache = new();

    private JobSchema(Type type, JobAttribute? job, IReadOnlyList<JobOption> options)
    {
        Type = type;
        Job = job;
        Options = options;
    }

    /// <summary>The job's type.</summary>
    public Type Type { get; }

    /// <summary>The job's command declaration, or null for an options record.</summary>
    public JobAttribute? Job { get; }

    /// <summary>The command ("realign").</summary>
    public string Command => Job?.Command ?? Type.Name;

    /// <summary>The options in declaration order (a shared key once, where first declared).</summary>
    public IReadOnlyList<JobOption> Options { get; }

    /// <summary>The option with this key or alias ("output", "o"), or null.</summary>
    public JobOption? Find(string key) =>
        Options.FirstOrDefault(o => o.Key == key || (o.Attribute.Alias is { } a && a.TrimStart('-') == key));

    /// <summary>The positional option, or null.</summary>
    public JobOption? Positional => Options.FirstOrDefault(o => o.Attribute.Positional);

    /// <summary>The schema of <paramref name="type"/> (a job, or a record of options).</summary>
    public static JobSchema Of(Type type) => Cache.GetOrAdd(type, t =>
    {
        var options = new List<JobOption>();
        Collect(t, [], null, options);
        return new JobSchema(t, t.GetCustomAttribute<JobAttribute>(), options);
    });

    /// <summary>The schema of <typeparamref name="T"/>.</summary>
    public static JobSchema Of<T>() => Of(typeof(T));

    private static void Collect(Type type, IReadOnlyList<PropertyInfo> through, string[]? groups, List<JobOption> options)
    {
        object? fresh = null; // made only for a type that declares options
        // In declaration order, a base record's options (WeightEditJob's) before the derived job's own.
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).OrderBy(p => Depth(p.DeclaringType)).ThenBy(p => p.MetadataToken))
        {
            if (property.GetCustomAttribute<OptionsAttribute>() is { } nested)
            {
                Collect(Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType, [.. through, property], nested.Groups, options);
                continue;
            }
            if (property.GetCustomAttribute<OptionAttribute>() is not { } declared) continue;
            if (groups is not null && (declared.Group is null || !groups.Contains(declared.Group))) continue;
            string key = declared.Name ?? Kebab(property.Name);
            var path = new OptionPath(through, property);
            int at = options.FindIndex(o => o.Key == key);
            if (at >= 0)
            {
                if (options[at].ValueType != property.PropertyType)
                    throw new InvalidOperationException($"{type.Name}.{property.Name}: the shared option '{key}' has another type");
                options[at] = options[at] with { Properties = [.. options[at].Properties, path] };
            }
            else
                options.Add(new JobOption(key, declared, [path], property.GetValue(fresh ??= Fresh(type))));
        }
    }

    // How many base types a type has (object: 0).
    private static int Depth(Type? type) => type?.BaseType is { } b ? 1 + Depth(b) : 0;

    // A job or record as a fresh `new T()` makes it: its initial values are the options' defaults.
    private static object Fresh(Type type) => Activator.CreateInstance(type)
        ?? throw new InvalidOperationException($"{type.Name} has no parameterless constructor");

    /// <summary>"BatchSize" → "batch-size".</summary>
    public static string Kebab(string name) =>
        string.Concat(name.Select((c, i) => char.IsUpper(c) ? (i > 0 && !char.IsUpper(name[i - 1]) ? "-" : "") + char.ToLowerInvariant(c) : c.ToString()));

    /// <summary>
    /// A job from option values as the command line or a recipe gives them: by key, each value's text (a flag's
    /// "true"/"false"; a list's items, each split at commas). Options not given keep their defaults; an options record
    /// none of whose options is given stays as a fresh job has it (null for a nullable one).
    /// </summary>
    /// <exception cref="IrrException">A required option is missing, or a value does not convert: "<c>COMMAND: key must be a number, not 'abc'</c>".</exception>
    public object Bind(IReadOnlyDictionary<string, IReadOnlyList<string>> given)
    {
        object job = Fresh(Type);
        var byKey = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var (key, values) in given)
        {
            var option = Find(key) ?? throw new IrrException($"{Command}: unknown option '{Diagnostics.Escape(key)}'");
            if (!byKey.TryAdd(option.Key, values)) throw new IrrException($"{Command}: {option.Key} is given twice");
        }
        foreach (var option in Options)
        {
            if (!byKey.TryGetValue(option.Key, out var values))
            {
                if (option.Attribute.Required)
                    throw new IrrException(option.Attribute.Positional && option.Attribute.HelpName is { } name
                        ? $"{Command}: {name} is required (in a recipe: {option.Key})"
                        : $"{Command}: {option.Key} is required");
                continue;
            }
            object? value = Convert(option, values);
            if (option.Attribute.Hub && value is string reference) value = FromHub(option, reference);
            if (option.Attribute.HubFile) value = value switch
            {
                string file => FromHubFile(option, file),
                string[] files => files.Select(f => FromHubFile(option, f)).ToArray(),
                _ => value,
            };
            foreach (var path in option.Properties) Set(job, path, value);
        }
        return job;
    }

    // A Hub repo "org/name[@revision]" as its snapshot directory in the local cache; a local path as itself.
    private string FromHub(JobOption option, string reference)
    {
        // mergekit's "model+lora" is two options here: said so, rather than "no such file or directory".
        if (reference.IndexOf('+') is > 0 and var plus && plus < reference.Length - 1 && !File.Exists(reference) && !Directory.Exists(reference)
            && Find("adapter") is { } adapter && adapter != option)
            throw new IrrException($"{Command}: {option.Key} {Diagnostics.Escape(reference)}: give the adapter apart: --{option.Key} {Diagnostics.Escape(reference[..plus])} --adapter {Diagnostics.Escape(reference[(plus + 1)..])} (mergekit's model+lora form is not read)");
        var parsed = IO.ModelReference.Parse(reference);
        string path;
        try
        {
            path = parsed.Resolve(option.Attribute.HubTokenizerOnly ? IO.ModelReference.TokenizerFiles : IO.ModelReference.Needed).Path;
        }
        catch (IrrException e)
        {
            // "score: model org/name@main: … not in the Hugging Face cache at …"; asked of the Hub, a misspelt local path ("out/mdl")
            // also says that it is no directory here, which the Hub's "not found, or gated or private (401)" does not.
            string local = e.Message.Contains("no such local directory", StringComparison.Ordinal) || !parsed.IsHub
                ? "" : $"{Diagnostics.Escape(reference)}: no such local directory, and as a Hub repo ";
            throw new IrrException($"{Command}: {option.Key} {local}{e.Message}", e);
        }
        // A Hub adapter given where a model goes: say where it goes (a local directory says "no config.json" when opened).
        if (parsed.IsHub && !option.Key.Contains("adapter", StringComparison.Ordinal) && File.Exists(Path.Combine(path, IO.LoraAdapter.ConfigFile))
            && !File.Exists(Path.Combine(path, "config.json")))
            throw new IrrException($"{Command}: {option.Key} {Diagnostics.Escape(reference)}: a PEFT adapter (adapter_config.json, no config.json), not a model; give it with {AdapterOptionFor(option)}");
        return path;
    }

    // The option that takes an adapter on the model option `option`: safety-vector's --unaligned-adapter for --unaligned, else --adapter.
    private string AdapterOptionFor(JobOption option) =>
        Find(option.Key + "-adapter") is { } own ? "--" + own.Key : Find("adapter") is { } adapter ? "--" + adapter.Key : "an adapter option";

    // An hf://datasets/org/name[@revision]/path file as its path in the local cache, downloaded when missing; a local path as itself.
    private string FromHubFile(JobOption option, string text)
    {
        if (!Data.HubDataPath.IsHubPath(text)) return text;
        try
        {
            var hub = Data.HubDataPath.Parse(text);
            if (hub.PathInRepo.Length == 0) throw new IrrException($"{Diagnostics.Escape(text)}: names a repo, not a file in it (hf://datasets/org/name/path/to/file.parquet)");
            return IO.HubClient.Current.File(hub.RepoId, hub.Revision, hub.RepoType, hub.PathInRepo).Path;
        }
        catch (IrrException e)
        {
            throw new IrrException($"{Command}: {option.Key} {e.Message}", e);
        }
    }

    /// <summary><see cref="Bind"/> with the job's type.</summary>
    public T Bind<T>(IReadOnlyDictionary<string, IReadOnlyList<string>> given) => (T)Bind(given);

    private static void Set(object job, OptionPath path, object? value)
    {
        object holder = job;
        var chain = new List<(object Holder, PropertyInfo Property, object Value)>();
        foreach (var p in path.Through)
        {
            // Records are immutable to callers but their init setters are reachable here: a copy made by reflection is set, then put back.
            object inner = p.GetValue(holder) ?? Fresh(Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType);
            chain.Add((holder, p, inner));
            holder = inner;
        }
        path.Property.SetValue(holder, value);
        for (int i = chain.Count - 1; i >= 0; i--) chain[i].Property.SetValue(chain[i].Holder, chain[i].Value);
    }

    private object? Convert(JobOption option, IReadOnlyList<string> values)
    {
        var items = option.IsList ? values.SelectMany(v => SplitList(option, v, v)).ToList() : values;
        if (!option.IsList && items.Count != 1)
            throw new IrrException($"{Command}: {option.Key} takes one value, not {items.Count}");
        if (option.Attribute.Parser is { } parser)
        {
            try
            {
                return ((IOptionParser)Activator.CreateInstance(parser)!).Parse(items, option.Key);
            }
            catch (IrrException e) when (!e.Message.StartsWith(Command + ": ", StringComparison.Ordinal))
            {
                throw new IrrException($"{Command}: {e.Message}", e); // "realign: modules: 'foo_proj' is not one of …"
            }
        }
        var type = option.ValueType;
        if (option.IsList)
        {
            var element = type.IsArray ? type.GetElementType()! : type.GetGenericArguments()[0];
            var array = Array.CreateInstance(element, items.Count);
            for (int i = 0; i < items.Count; i++) array.SetValue(ConvertOne(option, element, items[i]), i);
            return array;
        }
        object? one = ConvertOne(option, Nullable.GetUnderlyingType(type) ?? type, items[0]);
        return option.Attribute.Negated ? !(bool)one! : one;
    }

    /// <summary>
    /// The items of one value of a list option: a comma-separated string split at its commas, except a path option's value
    /// that names an existing file or directory as a whole (<paramref name="resolved"/>: the value as a path), which stays one,
    /// and a <see cref="OptionAttribute.KeyValue"/> item, which may hold commas.
    /// </summary>
    public static IEnumerable<string> SplitList(JobOption option, string value, string resolved) =>
        option.Attribute.KeyValue || (option.IsPath && (File.Exists(resolved) || Directory.Exists(resolved)))
            ? [value]
            : value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    // The built-in conversions: what a value of the type must be (for the message) and its parse (null: it does not parse).
    private static readonly Dictionary<Type, (string What, Func<string, object?> Parse)> Conversions = new()
    {
        [typeof(string)] = ("text", t => t),
        [typeof(bool)] = ("a flag: true or false", t => bool.TryParse(t, out bool b) ? b : null),
        [typeof(int)] = ("a whole number", t => int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i) ? i : null),
        [typeof(long)] = ("a whole number", t => long.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out long l) ? l : null),
        [typeof(double)] = ("a number", t => double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : null),
        [typeof(float)] = ("a number", t => float.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out float f) ? f : null),
    };

    private object? ConvertOne(JobOption option, Type type, string text)
    {
        if (!Conversions.TryGetValue(type, out var conversion))
            throw new InvalidOperationException($"{Type.Name}: option '{option.Key}' has the unsupported type {type.Name}");
        return conversion.Parse(text) ?? throw new IrrException($"{Command}: {option.Key} must be {conversion.What}, not '{Diagnostics.Escape(text)}'");
    }

    /// <summary>
    /// Refuses a given input option whose path does not exist, naming the option: "<c>realign: base Aa: no such file or
    /// directory</c>" (before the job opens anything, so the error says which option it was). An input whose
    /// <see cref="OptionAttribute.NotNeededWith"/> key is given is not checked.
    /// </summary>
    /// <exception cref="IrrException">An input path does not exist.</exception>
    public void RequireInputsExist(object job)
    {
        foreach (var option in Options.Where(o => o.Kind == OptionKind.Input))
        {
            // An input that another given key makes unnecessary is only a label then (eval safety's model with responses).
            if (option.Attribute.NotNeededWith is { } other && Find(other)?.ValueIn(job) is not null) continue;
            var paths = option.ValueIn(job) switch
            {
                string one => [one],
                IEnumerable<string> many => many.ToList(),
                _ => [],
            };
            foreach (string path in paths.Where(p => !File.Exists(p) && !Directory.Exists(p)))
                throw new IrrException($"{Command}: {option.Key} {Diagnostics.Escape(path)}: no such file or directory");
        }
    }

    /// <summary>
    /// Every option of <paramref name="job"/> with its value, defaults included, by key: what run.json records of a
    /// step. Paths are as given; null values are kept (as JSON null).
    /// </summary>
    public JsonObject Describe(object job) => Describe(job, _ => true);

    /// <summary>
    /// The options that can change what <paramref name="job"/> computes (<see cref="OptionAttribute.Fingerprinted"/>), by
    /// key, with input paths as given: what a rerun compares to decide that an earlier result is still good (with the
    /// inputs' content hashes, <see cref="UpToDate"/>).
    /// </summary>
    public JsonObject Fingerprint(object job) => Describe(job, o => o.Attribute.Fingerprinted && o.Kind != OptionKind.Output);

    private JsonObject Describe(object job, Func<JobOption, bool> include)
    {
        var json = new JsonObject();
        foreach (var option in Options.Where(include)) json[option.Key] = Json(option.ValueIn(job));
        return json;
    }

    /// <summary>
    /// An option value as JSON: numbers, text, flags and lists as themselves, null as null; the target modules "all"
    /// (every family's names, resolved per model when a job runs) as "all".
    /// </summary>
    public static JsonNode? Json(object? value) => value switch
    {
        null => null,
        IReadOnlyList<string> modules when modules.SequenceEqual(IO.ModelConfig.KnownLinearModules) => JsonValue.Create("all"),
        string s => JsonValue.Create(s),
        bool b => JsonValue.Create(b),
        int i => JsonValue.Create(i),
        long l => JsonValue.Create(l),
        double d => JsonValue.Create(d),
        float f => JsonValue.Create(f),
        System.Collections.IEnumerable list => new JsonArray(list.Cast<object?>().Select(Json).ToArray()),
        _ => JsonValue.Create(System.Convert.ToString(value, CultureInfo.InvariantCulture)),
    };
}
