using System.Text.Json.Nodes;
using Irr.IO;

namespace Irr.IO;

/// <summary>
/// Files written whole or not at all: into a hidden temporary name beside the target, renamed at the end,
/// so an interrupted or failed write never leaves a partial file (CONTRIBUTING's "no partial output").
/// Model directories, which are many files, go through <see cref="OutputDirectory"/> instead.
/// </summary>
public static class AtomicFile
{
    /// <summary>
    /// Writes a text file (UTF-8, no BOM) through <paramref name="write"/>; the directory is created when missing.
    /// An exception from <paramref name="write"/> leaves the target as it was.
    /// </summary>
    public static void WriteText(string path, Action<TextWriter> write)
    {
        RequireFileTarget(path);
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        Temporaries.WriteFile(full, temporary =>
        {
            using var writer = new StreamWriter(temporary, false, new System.Text.UTF8Encoding(false));
            write(writer);
        });
    }

    /// <summary>Writes <paramref name="text"/> as the whole file (see <see cref="WriteText(string, Action{TextWriter})"/>).</summary>
    public static void WriteText(string path, string text) => WriteText(path, w => w.Write(text));

    /// <summary>Writes one JSON object per item and line (JSONL, <see cref="JsonFiles.LineOptions"/>).</summary>
    public static void WriteJsonLines<T>(string path, IEnumerable<T> items, Func<T, JsonObject> toJson) =>
        WriteText(path, w =>
        {
            foreach (var item in items) w.WriteLine(toJson(item).ToJsonString(JsonFiles.LineOptions));
        });

    /// <summary>
    /// Checks, before any work, that <paramref name="path"/> can become a file: it is not an existing directory.
    /// (An existing file is replaced, as <c>torch.save</c> replaces one.)
    /// </summary>
    /// <exception cref="IrrException">The path is a directory.</exception>
    public static void RequireFileTarget(string path)
    {
        if (Directory.Exists(path)) throw new IrrException($"{path}: is a directory; give a file name for the output");
    }

    /// <summary>Checks, before any work, that <paramref name="path"/> can be a run directory: it is not an existing file.</summary>
    /// <exception cref="IrrException">The path is a file.</exception>
    public static void RequireDirectoryTarget(string path)
    {
        if (File.Exists(path)) throw new IrrException($"{path}: is a file; give a directory for the output");
    }
}
