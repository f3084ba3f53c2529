using System.Globalization;

namespace Irr;

/// <summary>
/// Resource budgets on untrusted input (issue 24; docs/formats.md, "Untrusted input"): every file a downloaded model
/// or data set brings is read within a limit sized to what real files need, and exceeding it is one clear error that
/// names the file and the limit. Each limit has a default and an environment variable that raises (or lowers) it,
/// named <c>IRR_MAX_…</c>; the variable is read on each use, so a test or a wrapper script may set it.
/// </summary>
public static class Limits
{
    /// <summary>
    /// The value of the limit <paramref name="variable"/> (e.g. <c>IRR_MAX_RECORD_BYTES</c>): the environment variable
    /// if set, else <paramref name="defaultValue"/>. Byte-sized values take a suffix (16MB, 1GiB, …; decimal and binary
    /// units as the safetensors sharding option reads them).
    /// </summary>
    /// <exception cref="IrrException">The variable is set but is not a positive number.</exception>
    public static long Get(string variable, long defaultValue)
    {
        string? text = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(text)) return defaultValue;
        if (TryParse(text.Trim(), out long value) && value > 0) return value;
        throw new IrrException($"{variable}={Diagnostics.Escape(text)}: not a positive number (e.g. 1000, 16MB, 1GiB)");
    }

    /// <summary>The message of an exceeded limit: "FILE: WHAT exceeds the limit of N (raise it with VAR=…)".</summary>
    public static IrrException Exceeded(string source, string what, string variable, long limit) =>
        new($"{source}: {what} exceeds the limit of {limit.ToString("N0", CultureInfo.InvariantCulture)} (raise it with {variable}=…)");

    private static bool TryParse(string text, out long value)
    {
        value = 0;
        int i = 0;
        while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] is '_')) i++;
        if (i == 0 || !long.TryParse(text[..i].Replace("_", ""), NumberStyles.None, CultureInfo.InvariantCulture, out long number)) return false;
        long unit = text[i..].Trim().ToUpperInvariant() switch
        {
            "" or "B" => 1,
            "KB" => 1000, "MB" => 1000_000, "GB" => 1000_000_000,
            "KIB" or "K" => 1L << 10, "MIB" or "M" => 1L << 20, "GIB" or "G" => 1L << 30,
            _ => 0,
        };
        if (unit == 0) return false;
        try { value = checked(number * unit); } catch (OverflowException) { return false; }
        return true;
    }
}
