"""Resolve Apache Kafka's runtime jars from Maven Central with Maven, cached after the first run.

The Kafka tarball is not on a package registry, but its jars are: a dependency-only POM plus
`mvn dependency:copy-dependencies` gives the same classpath. Maven's ~/.m2 caches the downloads;
the copied folder <home>/kafka-<version>/libs makes later starts need no Maven at all.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

#: the SLF4J binding the tarball ships but the POM does not bring (Kafka 4.x: slf4j 1.7 + log4j2)
LOG4J_VERSION = "2.24.3"

POM_TEMPLATE = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>radio-engine</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""


class MissingTool(RuntimeError):
    """Java or Maven is missing or too old; the message says what to install."""


def pom_xml(kafka_version: str) -> str:
    """The dependency-only POM that pulls Kafka's broker and a log4j2 SLF4J binding."""
    return POM_TEMPLATE.format(kafka=kafka_version, log4j=LOG4J_VERSION)


def libs_dir(home: Path, kafka_version: str) -> Path:
    """Where the jars of one Kafka version are kept."""
    return Path(home) / f"kafka-{kafka_version}" / "libs"


def ensure_kafka_jars(home: Path, kafka_version: str) -> Path:
    """Return the folder of Kafka's runtime jars, running Maven only if it is not there yet."""
    target = libs_dir(home, kafka_version)
    marker = target / ".complete"
    if marker.exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingTool(
            "Maven (mvn) is not on PATH: install it (Debian: apt-get install maven) so the "
            "broker launcher can resolve Apache Kafka's jars from Maven Central"
        )
    Path(home).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="kafka-jars-", dir=Path(home)))
    try:
        (staging / "pom.xml").write_text(pom_xml(kafka_version))
        cmd = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(staging / "pom.xml"),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging / 'libs'}",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"Maven could not resolve org.apache.kafka:kafka_2.13:{kafka_version}:\n"
                + (done.stdout + done.stderr)[-3000:]
            )
        jars = list((staging / "libs").glob("*.jar"))
        if not any(j.name.startswith("kafka_2.13-") for j in jars):
            raise RuntimeError(f"Maven ran but no kafka_2.13 jar arrived in {staging / 'libs'}")
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging / "libs"), target)
        marker.write_text(f"{len(jars)} jars for Kafka {kafka_version}\n")
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)
