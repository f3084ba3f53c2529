namespace Irr.IO;

/// <summary>
/// The one rule for an output that exists already, for every command that writes a file or directory: it is refused,
/// with one line naming <c>--overwrite</c> (<c>overwrite: true</c> in a recipe), unless overwrite is given; then it is
/// replaced atomically (the new output is written under a temporary name and renamed into place, so that a failed or
/// interrupted run leaves the old one).
/// </summary>
public static class OutputPolicy
{
    /// <summary>The words of the refusal before the remedy.</summary>
    public const string Exists = "exists and";

    /// <summary>What the refusal tells the user to do.</summary>
    public const string Remedy = "choose another output, or give --overwrite to replace it";

    /// <summary>Refuses an existing output file unless <paramref name="overwrite"/>.</summary>
    /// <exception cref="IrrException">"<c>PATH: exists (choose another output, or give --overwrite to replace it)</c>"; or the path is a directory (<see cref="AtomicFile.RequireFileTarget"/>).</exception>
    public static void RequireNewFile(string path, bool overwrite)
    {
        RequireReplaceable(path);
        AtomicFile.RequireFileTarget(path);
        if (File.Exists(path) && !overwrite) throw new IrrException($"{path}: exists ({Remedy})");
    }

    /// <summary>
    /// Refuses an output path that leads to something other than a regular file or a directory (<c>/dev/null</c>, a FIFO, a
    /// socket): an output is written beside it and renamed over it, which would replace the device itself (as root, /dev/null).
    /// </summary>
    /// <exception cref="IrrException">"<c>/dev/null: not a regular file (a character device); irr writes an output by renaming a new file over it</c>".</exception>
    public static void RequireReplaceable(string path)
    {
        if (InputFile.KindOf(path) is { } kind && kind != "a directory")
            throw new IrrException($"{path}: not a regular file ({kind}); irr writes an output by renaming a new file over it, which would replace it");
    }
}
