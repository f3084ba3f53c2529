using System.Text.Json;
using Irr.IO;

namespace Irr.Text;

/// <summary>
/// Which files a command's tokenizer and chat template come from, decided in one place for every command (score,
/// generate, eval, train, fisher, realign's calibration, sweep, chat-format, tokenize), as transformers and vLLM decide.
/// </summary>
/// <remarks>
/// <para><b>The directory.</b> With a LoRA adapter whose folder holds a <c>tokenizer.json</c> (TRL, axolotl and
/// LlamaFactory save the tokenizer beside the adapter; or a SentencePiece <c>tokenizer.model</c>, which AutoTokenizer converts), the adapter folder's tokenizer and chat template are used, as
/// vLLM does (<c>get_lora_tokenizer</c> loads <c>AutoTokenizer.from_pretrained(lora_path)</c> and falls back to the base
/// model's only when that fails) and as <c>AutoTokenizer.from_pretrained(adapter_dir)</c> with a <c>PeftModel</c> does.
/// An adapter folder with some tokenizer files but neither <c>tokenizer.json</c> nor <c>tokenizer.model</c> is warned about and the model's are used.</para>
/// <para><b>The templates of a directory</b> (transformers' <c>PreTrainedTokenizerBase._from_pretrained</c>; its test
/// <c>test_chat_template_file_priority</c>): <c>chat_template.jinja</c> (named "default") and
/// <c>additional_chat_templates/&lt;name&gt;.jinja</c>, when any of them exists, replace the <c>chat_template</c> key of
/// <c>tokenizer_config.json</c> entirely; otherwise that key (a string, or a list of <c>{name, template}</c>); otherwise
/// the legacy processor file <c>chat_template.json</c> (<c>{"chat_template": …}</c>, what <c>AutoProcessor</c> reads).</para>
/// </remarks>
public static class TokenizerSource
{
    /// <summary>transformers' <c>CHAT_TEMPLATE_FILE</c>.</summary>
    public const string ChatTemplateFile = "chat_template.jinja";

    /// <summary>transformers' <c>LEGACY_PROCESSOR_CHAT_TEMPLATE_FILE</c>.</summary>
    public const string LegacyChatTemplateFile = "chat_template.json";

    /// <summary>transformers' <c>CHAT_TEMPLATE_DIR</c>: one <c>&lt;name&gt;.jinja</c> per named template.</summary>
    public const string ChatTemplateDir = "additional_chat_templates";

    /// <summary>The files of a directory that make its tokenizer and chat template (besides <see cref="ChatTemplateDir"/>).</summary>
    public static readonly IReadOnlyList<string> FileNames =
        ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "tokenizer.model", ChatTemplateFile, LegacyChatTemplateFile];

    /// <summary>
    /// The directory whose tokenizer and chat template are used for <paramref name="modelDir"/> with the optional adapter
    /// <paramref name="adapterDir"/>: the adapter folder when it holds a <c>tokenizer.json</c> (with a one-line note
    /// through <see cref="Diagnostics.Warn"/>), else the model directory (warning when the adapter folder holds other
    /// tokenizer files, which are then not used).
    /// </summary>
    public static string Directory(string modelDir, string? adapterDir)
    {
        if (adapterDir is null || !System.IO.Directory.Exists(adapterDir)) return modelDir;
        if (File.Exists(Path.Combine(adapterDir, "tokenizer.json")) || File.Exists(Path.Combine(adapterDir, "tokenizer.model")))
        {
            Diagnostics.Warn($"{adapterDir}: using the tokenizer and chat template saved with the adapter, not {modelDir}'s (as vLLM and AutoTokenizer.from_pretrained on the adapter folder do)");
            return adapterDir;
        }
        var partial = FilesIn(adapterDir).ToList();
        if (partial.Count > 0)
            Diagnostics.Warn($"{adapterDir}: has {string.Join(", ", partial)} but no tokenizer.json or tokenizer.model, so they are not used: the tokenizer and chat template are {modelDir}'s " +
                             "(save the adapter's tokenizer with tokenizer.save_pretrained to use it)");
        return modelDir;
    }

    /// <summary>The tokenizer files present in <paramref name="dir"/> (<see cref="FileNames"/>, then <c>additional_chat_templates/*.jinja</c>), as relative paths.</summary>
    public static IEnumerable<string> FilesIn(string dir)
    {
        foreach (string name in FileNames)
            if (File.Exists(Path.Combine(dir, name))) yield return name;
        string named = Path.Combine(dir, ChatTemplateDir);
        if (System.IO.Directory.Exists(named))
            foreach (string file in System.IO.Directory.EnumerateFiles(named, "*.jinja").Order(StringComparer.Ordinal))
                yield return $"{ChatTemplateDir}/{Path.GetFileName(file)}";
    }

    /// <summary>
    /// The chat templates of a directory by name ("default" for the unnamed one), in transformers' order (see the
    /// remarks of <see cref="TokenizerSource"/>), and the file(s) they came from, for messages.
    /// </summary>
    /// <exception cref="IrrException">A template file cannot be read, or chat_template.json is malformed.</exception>
    public static (IReadOnlyDictionary<string, string> Templates, string Source) ChatTemplates(string dir, TokenizerConfig config)
    {
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        string jinja = Path.Combine(dir, ChatTemplateFile), named = Path.Combine(dir, ChatTemplateDir);
        if (File.Exists(jinja)) files["default"] = IO.JsonFiles.ReadText(jinja);
        if (System.IO.Directory.Exists(named))
            foreach (string file in System.IO.Directory.EnumerateFiles(named, "*.jinja"))
                files[Path.GetFileNameWithoutExtension(file)] = IO.JsonFiles.ReadText(file);
        if (files.Count > 0)
            return (files, File.Exists(jinja) ? (files.Count > 1 ? $"{ChatTemplateFile} and {ChatTemplateDir}/" : ChatTemplateFile) : $"{ChatTemplateDir}/");
        if (config.ChatTemplates.Count > 0)
            return (config.ChatTemplates, "tokenizer_config.json");
        string legacy = Path.Combine(dir, LegacyChatTemplateFile);
        if (File.Exists(legacy))
        {
            using var doc = JsonCursor.Parse(IO.JsonFiles.ReadText(legacy), LegacyChatTemplateFile);
            var root = JsonCursor.Root(doc, LegacyChatTemplateFile);
            if (root.Kind != JsonValueKind.Object) throw root.Error($"expected an object, found {root.Describe()}");
            if (root.GetNonNull("chat_template") is { } t)
                return (new Dictionary<string, string>(StringComparer.Ordinal) { ["default"] = t.AsString() }, LegacyChatTemplateFile);
        }
        return (new Dictionary<string, string>(StringComparer.Ordinal), "tokenizer_config.json");
    }

    /// <summary>
    /// Copies the tokenizer files of <paramref name="fromDir"/> (<see cref="FilesIn"/>) into the directory
    /// <paramref name="toDir"/>, or only its <c>additional_chat_templates/</c>, which a copy of a model's top-level files misses.
    /// </summary>
    public static void CopyFiles(string fromDir, string toDir, bool namedTemplatesOnly = false)
    {
        foreach (string name in FilesIn(fromDir))
        {
            if (namedTemplatesOnly && !name.Contains('/')) continue;
            string target = Path.Combine(toDir, name);
            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            IO.InputFile.RequireRegular(Path.Combine(fromDir, name));
            File.Copy(Path.Combine(fromDir, name), target, overwrite: true);
        }
    }

    /// <summary>Template names as transformers lists them: Python's <c>sorted(names)</c> printed as a list, e.g. <c>['rag', 'tool_use']</c>.</summary>
    public static string NameList(IEnumerable<string> names) =>
        "[" + string.Join(", ", names.Order(StringComparer.Ordinal).Select(PythonRepr)) + "]";

    // Python's repr of a str: single quotes, or double quotes when it holds a ' and no ".
    private static string PythonRepr(string s)
    {
        s = s.Replace("\\", "\\\\");
        return s.Contains('\'') && !s.Contains('"') ? $"\"{s}\"" : "'" + s.Replace("'", "\\'") + "'";
    }
}
