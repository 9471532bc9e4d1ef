"""The personal-data guard: finds personal data in the subject and body text of a mail.

The person a request concerns belongs only in the attached form. ``scan`` reports what kind of
personal data it saw and where (the subject, or a 1-based body line), with a score; it never
reports the value, not even partly. ``describe`` turns findings into the Swedish phrase for the
reasons ``subject.personal_data`` and ``body.personal_data``.

Everything is regex-driven over the whole text; Python only looks at the (few) candidates. The
package is split by job:

- ``config``: ``Finding``, ``PersonalDataConfig`` (thresholds, switches, the scan budget);
- ``text``: normalising the text, masking look-alike spans (OIDs, IBANs, HSA-ids), line numbers;
- ``numbers``: personnummer, samordningsnummer and reserve numbers, and the contexts that silence them;
- ``timestamps``: dates and times in file names and log lines, which are not personnummer;
- ``hsa``: HSA-ids of persons;
- ``names``: names of persons written in context;
- ``birth_dates``: birth dates stated as such;
- ``scanner``: ``scan``, the entry point, with the budget; ``wording``: ``describe``, the Swedish phrase.

Word lists (context words, first names and surnames, words that are also names, sign-offs, month
names) and the Swedish wording are data files in this package (``words/*.txt``, ``months.toml``,
``wording.toml``), read once at import; see ``words_data`` for their format.
"""

from rules.personal_data.config import CATEGORIES, UNSCANNED, Finding, PersonalDataConfig
from rules.personal_data.scanner import scan
from rules.personal_data.wording import describe

__all__ = ["CATEGORIES", "UNSCANNED", "Finding", "PersonalDataConfig", "describe", "scan"]
